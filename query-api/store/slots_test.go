package store

import (
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

// TestPlanSlots: the cached slots lie wholly inside the span and inside a
// settled range of a part large enough, joined across parts; the rest of
// the span is counted from rows.
func TestPlanSlots(t *testing.T) {
	b := bucketing{off: offsets{offs: []int{0}}, width: 3600}
	const s = slotSeconds
	big := part{name: "a", partition: "w", level: 1, distinct: true, rows: 500, lo: 10*s + 7, hi: 20*s - 1}
	next := part{name: "b", partition: "w", level: 1, distinct: true, rows: 500, lo: 20 * s, hi: 30*s + 5}
	small := part{name: "c", partition: "w", level: 1, distinct: true, rows: 10, lo: 40 * s, hi: 50 * s}
	fresh := part{name: "d", partition: "w", rows: 1000, lo: 25*s + 3, hi: 25*s + 3}
	parts := []part{big, next, small, fresh}
	owned := settledRanges(parts)
	sp := span{lo: (12*s + 1) * 1e9, hi: 60 * s * 1e9}
	runs, used := planSlots(owned, parts, 100, sp, b)
	// a: slots 13-19 (12 starts before the span); b: 20-24 and 26-29 (25
	// holds the fresh part's second, 30 ends past b); c is too small.
	require.Equal(t, []slotRun{{part: big, lo: 13, hi: 19}, {part: next, lo: 20, hi: 24}, {part: next, lo: 26, hi: 29}}, runs)
	ns := func(n int64) int64 { return n * s * 1e9 }
	require.Equal(t, []span{{ns(13), ns(25)}, {ns(26), ns(30)}}, used)
	require.Equal(t, []span{{sp.lo, ns(13)}, {ns(25), ns(26)}, {ns(30), sp.hi}}, outside(sp, used))
	runs, used = planSlots(owned, parts, 100, sp, bucketing{off: offsets{offs: []int{0}}, width: 60})
	require.Empty(t, runs, "minutes are counted from rows")
	require.Equal(t, []span{sp}, outside(sp, used))
}

// TestSumSlots: the runs' slots of each part, added per bucket.
func TestSumSlots(t *testing.T) {
	b := bucketing{off: offsets{offs: []int{20700}}, width: 3600} // +05:45
	entries := map[string][]slotCount{"a": {{slot: 3, n: 5}, {slot: 4, n: 1}, {slot: 5, n: 2}, {slot: 9, n: 7}}}
	runs := []slotRun{{part: part{name: "a"}, lo: 4, hi: 5}}
	// Slots 4 (01:00-01:15 UTC, 06:45 local: the hour of 06:00 local,
	// 00:15 UTC) and 5 (07:00 local, 01:15 UTC).
	require.Equal(t, []keyCount{{key: 900, n: 1}, {key: 4500, n: 2}}, sumSlots(runs, entries, b))
}
