package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bucketsOf is a bucketing of zone over [from, to) (now = to).
func bucketsOf(t *testing.T, zone *time.Location, iv Interval, from, to time.Time) bucketing {
	off, err := zoneOffsets(zone, span{lo: from.UnixNano(), hi: to.UnixNano()}, to)
	require.NoError(t, err)
	return bucketing{off: off, width: int64(iv.Duration() / time.Second), day: iv == Day}
}

// TestBucketKeyIsTheZonesClock: the Go key of a second is the bucket the
// histogram documents: the start of its whole hour of the zone's clock (in
// UTC), or its local date, across Paris's clocks going back and forward
// and in Kathmandu (+05:45).
func TestBucketKeyIsTheZonesClock(t *testing.T) {
	for _, name := range []string{"UTC", "Europe/Paris", "Asia/Kathmandu", "America/New_York"} {
		zone, err := time.LoadLocation(name)
		require.NoError(t, err)
		from, to := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
		hours, days := bucketsOf(t, zone, Hour, from, to), bucketsOf(t, zone, Day, from, to)
		for sec := from.Unix(); sec < to.Unix(); sec += 997 {
			local := time.Unix(sec, 0).In(zone)
			_, off := local.Zone()
			wantHour := (sec+int64(off))/3600*3600 - int64(off)
			require.Equal(t, wantHour, hours.key(sec), "%s %v", name, local)
			y, m, d := local.Date()
			require.Equal(t, time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400, days.key(sec), "%s %v", name, local)
		}
	}
}

// TestWholeSlots: every slot of hours and days of a zone whose offsets are
// quarter hours lies in one bucket (Paris across both changes, Kathmandu,
// New York); no slot of minutes or 5 minutes does; and a zone whose
// offset is not a quarter hour (Monrovia, -00:44:30 until 1972) has none,
// nor has the slot in which such an offset ends.
func TestWholeSlots(t *testing.T) {
	from, to := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"UTC", "Europe/Paris", "Asia/Kathmandu", "America/New_York"} {
		zone, err := time.LoadLocation(name)
		require.NoError(t, err)
		for _, iv := range []Interval{Hour, Day} {
			b := bucketsOf(t, zone, iv, from, to)
			for n := from.Unix() / slotSeconds; n < to.Unix()/slotSeconds; n++ {
				require.True(t, b.wholeSlot(n), "%s %s slot %d", name, iv, n)
				first := b.key(n * slotSeconds)
				for sec := n * slotSeconds; sec < (n+1)*slotSeconds; sec += 60 {
					require.Equal(t, first, b.key(sec))
				}
			}
		}
		for _, iv := range []Interval{Minute, FiveMinutes} {
			require.False(t, bucketsOf(t, zone, iv, from, to).wholeSlot(from.Unix()/slotSeconds), "%s %s", name, iv)
		}
	}
	monrovia, err := time.LoadLocation("Africa/Monrovia")
	require.NoError(t, err)
	// 1972-01-07 00:44:30 UTC: -00:44:30 becomes UTC.
	change := time.Date(1972, 1, 7, 0, 44, 30, 0, time.UTC)
	for _, iv := range []Interval{Hour, Day} {
		b := bucketsOf(t, monrovia, iv, change.AddDate(0, 0, -3), change.AddDate(0, 0, 3))
		require.Len(t, b.off.ends, 1)
		// Two days before the change, 00:44:30 UTC is the local midnight
		// (and an hour's start) inside the slot 00:30-00:45.
		require.False(t, b.wholeSlot(change.Add(-48*time.Hour).Unix()/slotSeconds), "%s before the change", iv)
		require.False(t, b.wholeSlot(change.Unix()/slotSeconds), "%s: the slot of the change", iv)
		require.True(t, b.wholeSlot(change.Add(time.Hour).Unix()/slotSeconds), "%s after the change (UTC)", iv)
	}
	// An offset that changes and changes back inside one slot.
	b := bucketing{off: offsets{ends: []int64{9000 + 100, 9000 + 200}, offs: []int{0, 3600, 0}}, width: 3600}
	require.False(t, b.wholeSlot(10))
	require.True(t, b.wholeSlot(11))
}

// TestPlanSlots: the cached slots lie wholly inside the span and inside
// the parts' time ranges, and are reached only by parts large enough and
// holding each key once, sharing at most their first or last second; the
// rest of the span is counted from rows.
func TestPlanSlots(t *testing.T) {
	b := bucketing{off: offsets{offs: []int{0}}, width: 3600}
	const s = slotSeconds
	merged := func(name string, lo, hi int64) part {
		return part{name: name, partition: "w", level: 1, distinct: true, rows: 500, lo: lo, hi: hi}
	}
	a := merged("a", 10*s+7, 20*s+5)      // slot 10 starts before it
	next := merged("b", 20*s+5, 30*s+5)   // shares a's last second
	inside := merged("c", 24*s+3, 24*s+8) // inside b: slot 24 is not countable
	small := part{name: "d", partition: "w", level: 1, distinct: true, rows: 10, lo: 40 * s, hi: 41 * s}
	fresh := part{name: "e", partition: "w", rows: 1000, lo: 27 * s, hi: 27*s + 3} // not known to hold each key once
	parts := []part{a, next, inside, small, fresh}
	sp := span{lo: (12*s + 1) * 1e9, hi: 60 * s * 1e9}
	plan := planSlots(parts, 100, sp, b)
	// 13-23 (12 starts before the span; 20 is shared at an edge), 25-26,
	// 28-30 (31-39 are reached by no part: counted from rows; 40-41 are
	// the small part's).
	want := []int64{13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25, 26, 28, 29, 30}
	require.Equal(t, want, plan.slots)
	require.Equal(t, []part{a, next}, plan.parts)
	ns := func(n int64) int64 { return n * s * 1e9 }
	require.Equal(t, []span{{ns(13), ns(24)}, {ns(25), ns(27)}, {ns(28), ns(31)}}, plan.used)
	require.Equal(t, []span{{sp.lo, ns(13)}, {ns(24), ns(25)}, {ns(27), ns(28)}, {ns(31), sp.hi}}, outside(sp, plan.used))
	require.Empty(t, planSlots(parts, 100, sp, bucketing{off: offsets{offs: []int{0}}, width: 60}).slots, "minutes are counted from rows")
	overlapping := merged("f", 15*s, 15*s+10)
	require.NotContains(t, planSlots(append(parts, overlapping), 100, sp, b).slots, int64(15), "two parts sharing more than an edge")
	require.Empty(t, planSlots([]part{merged("g", 0, 0)}, 0, sp, b).slots, "a part without a time range")
}

// TestSumSlots: the plan's slots of each part added per bucket; a second
// two parts share counts the keys at it once.
func TestSumSlots(t *testing.T) {
	b := bucketing{off: offsets{offs: []int{20700}}, width: 3600} // +05:45
	const s = slotSeconds
	pa := part{name: "a", lo: 3 * s, hi: 5*s + 100}
	pb := part{name: "b", lo: 5*s + 100, hi: 9 * s}
	counted := map[string]partCounts{
		"a": {slots: []slotCount{{slot: 3, n: 5}, {slot: 4, n: 1}, {slot: 5, n: 4}}, last: []key{{ns: (5*s + 100) * 1e9, id: "x"}, {ns: (5*s + 100) * 1e9, id: "y"}}},
		"b": {slots: []slotCount{{slot: 5, n: 3}, {slot: 9, n: 7}}, first: []key{{ns: (5*s + 100) * 1e9, id: "x"}, {ns: (5*s + 100) * 1e9, id: "z"}}},
	}
	plan := slotPlan{slots: []int64{4, 5}, parts: []part{pa, pb}}
	// Slot 4 (01:00-01:15 UTC, 06:45 local: the hour of 06:00 local,
	// 00:15 UTC); slot 5 (07:00 local, 01:15 UTC): 4 + 3 rows, x twice.
	require.Equal(t, []keyCount{{key: 900, n: 1}, {key: 4500, n: 6}}, sumSlots(plan, counted, b))
}

// TestSameReach: a summed slot's parts must all stay active, and no new
// part may reach a summed slot.
func TestSameReach(t *testing.T) {
	const s = slotSeconds
	a := part{name: "a", lo: 10 * s, hi: 20*s - 1}
	b := part{name: "b", lo: 30 * s, hi: 40 * s}
	before := []part{a, b}
	plan := slotPlan{slots: []int64{12, 13}, parts: []part{a}, used: []span{{12 * s * 1e9, 14 * s * 1e9}}}
	require.True(t, sameReach(plan, before, before))
	require.True(t, sameReach(plan, before, []part{a}), "b reaches no summed slot")
	require.False(t, sameReach(plan, before, []part{b}), "a merged away")
	require.False(t, sameReach(plan, before, []part{a, b, {name: "c", lo: 14*s - 1, hi: 14 * s}}), "a new part reaches slot 13's last second")
	require.True(t, sameReach(plan, before, []part{a, b, {name: "c", lo: 14 * s, hi: 15 * s}}), "a new part after the summed slots")
}

// The cache holds at most its bytes, whichever workspaces fill it, and
// a workspace past its share drops its own entries, not another's.
func TestSlotCacheIsBoundedByBytes(t *testing.T) {
	c := newSlotCache(1_000, 20_000, nil)
	counts := partCounts{slots: make([]slotCount, 100)} // about 1.2 KB an entry
	victim := slotKey{part: partID{table: "t", name: "p0"}, workspace: "victim"}
	c.put(victim, counts)
	for i := range 200 {
		c.put(slotKey{part: partID{table: "t", name: fmt.Sprint("p", i)}, workspace: "other", cond: condHash(fmt.Sprint(i))}, counts)
		require.LessOrEqual(t, c.size, int64(20_000))
	}
	_, ok := c.get(victim)
	require.True(t, ok, "another workspace's entries dropped its own first")
	for i := range 200 {
		c.put(slotKey{part: partID{table: "t", name: fmt.Sprint("p", i)}, workspace: fmt.Sprint("ws", i)}, counts)
		require.LessOrEqual(t, c.size, int64(20_000))
	}
	require.Positive(t, c.order.Len())
}
