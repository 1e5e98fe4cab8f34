package store

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSettledRanges(t *testing.T) {
	merged := func(name, partition string, lo, hi int64) part {
		return part{name: name, partition: partition, level: 1, distinct: true, lo: lo, hi: hi}
	}
	fresh := func(name, partition string, lo, hi int64) part {
		return part{name: name, partition: partition, lo: lo, hi: hi}
	}
	for _, tt := range []struct {
		name  string
		parts []part
		want  []secRange
	}{
		{"a lone merged part", []part{merged("a", "w1", 100, 200)}, []secRange{{100, 200, "a"}}},
		{"a fresh part settles nothing", []part{fresh("a", "w1", 100, 200)}, nil},
		{"a fresh part checked to hold each key once", []part{{name: "a", partition: "w1", distinct: true, lo: 100, hi: 200}}, []secRange{{100, 200, "a"}}},
		{"neighbours sharing a second", []part{merged("a", "w1", 100, 200), fresh("b", "w1", 200, 300)}, []secRange{{100, 199, "a"}}},
		{"a copy inside", []part{merged("a", "w1", 100, 200), fresh("c", "w1", 150, 150)}, []secRange{{100, 149, "a"}, {151, 200, "a"}}},
		{"overlapping others", []part{merged("a", "w1", 100, 200), fresh("b", "w1", 90, 120), fresh("c", "w1", 110, 130), fresh("d", "w1", 190, 250)},
			[]secRange{{131, 189, "a"}}},
		{"two merged parts overlapping", []part{merged("a", "w1", 100, 200), merged("b", "w1", 150, 300)}, []secRange{{100, 149, "a"}, {201, 300, "b"}}},
		{"another partition does not reach", []part{merged("a", "w1", 100, 200), fresh("b", "w2", 150, 160)}, []secRange{{100, 200, "a"}}},
		{"covered whole", []part{merged("a", "w1", 100, 200), fresh("b", "w1", 50, 250)}, nil},
		{"no time range", []part{merged("a", "all", 0, 0)}, nil},
	} {
		require.Equal(t, tt.want, settledRanges(tt.parts), tt.name)
	}
}

func TestStillSettled(t *testing.T) {
	a := part{name: "a", partition: "w1", level: 1, distinct: true, lo: 100, hi: 200}
	owned := settledRanges([]part{a})
	require.True(t, stillSettled(owned, []part{a}))
	require.True(t, stillSettled(owned, []part{a, {name: "n", partition: "w1", lo: 201, hi: 300}}), "a part beside it")
	require.False(t, stillSettled(owned, []part{a, {name: "n", partition: "w1", lo: 150, hi: 150}}), "a copy arrived inside")
	require.False(t, stillSettled(owned, []part{{name: "a2", partition: "w1", level: 2, distinct: true, lo: 100, hi: 200}}), "merged with a part that arrived meanwhile")
	require.False(t, stillSettled(owned, nil), "dropped")
}

func TestCoalesce(t *testing.T) {
	require.Equal(t, []secRange{{1, 20, ""}, {30, 40, ""}}, coalesce([]secRange{{30, 40, "c"}, {11, 20, "b"}, {1, 10, "a"}}))
	var many []secRange
	for i := range int64(maxSettledRanges + 10) {
		many = append(many, secRange{lo: i * 100, hi: i*100 + i})
	}
	got := coalesce(many)
	require.Len(t, got, maxSettledRanges)
	require.NotContains(t, got, secRange{lo: 0, hi: 0}, "the shortest are left to de-duplication")
}

func TestSettledCond(t *testing.T) {
	for _, tt := range []struct {
		name    string
		settled []secRange
		want    string
		hull    []any
	}{
		{"one range: its hull", []secRange{{100, 199, "a"}}, "(timestamp_ns >= ? AND timestamp_ns < ?)", []any{int64(100e9), int64(200e9)}},
		{"a gap of seconds", []secRange{{200, 299, "b"}, {100, 196, "a"}},
			"(timestamp_ns >= ? AND timestamp_ns < ? AND intDiv(timestamp_ns, 1000000000) NOT IN (197, 198, 199))", []any{int64(100e9), int64(300e9)}},
		{"a gap too long for seconds: minutes", []secRange{{0, 59, "a"}, {3000, 3100, "b"}},
			"(timestamp_ns >= ? AND timestamp_ns < ? AND intDiv(timestamp_ns, 60000000000) NOT IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49))",
			[]any{int64(0), int64(3101e9)}},
	} {
		got, hull, ok := settledCond(tt.settled)
		require.True(t, ok, tt.name)
		require.Equal(t, tt.want, got, tt.name)
		require.Equal(t, tt.hull, hull, tt.name)
	}
	_, _, ok := settledCond(nil)
	require.False(t, ok, "nothing settled")
	_, _, ok = settledCond([]secRange{{-10, 5, "a"}})
	require.False(t, ok, "before 1970")
	_, _, ok = settledCond([]secRange{{0, 10, "a"}, {(maxGapUnits + 10) * 86400, (maxGapUnits + 11) * 86400, "b"}})
	require.False(t, ok, "a gap of more days than the bound")
}

// TestSettledCondSparesOnlySettledSeconds: whatever the ranges, a second
// the condition counts as it is lies in a settled range, and a second of
// a unit that reaches no gap is spared.
func TestSettledCondSparesOnlySettledSeconds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var rs []secRange
		next := rng.Int64N(1000)
		for range 1 + rng.IntN(6) {
			lo := next + rng.Int64N(5000)
			hi := lo + rng.Int64N(20000)
			rs = append(rs, secRange{lo: lo, hi: hi})
			next = hi + 2
		}
		width, units, ok := int64(0), []int64(nil), false
		for _, w := range unitSeconds {
			if units, ok = gapUnits(rs, w); ok {
				width = w
				break
			}
		}
		require.True(t, ok)
		spared := func(s int64) bool {
			return s >= rs[0].lo && s <= rs[len(rs)-1].hi && !slices.Contains(units, s/width)
		}
		settled := func(s int64) bool {
			return slices.ContainsFunc(rs, func(r secRange) bool { return r.lo <= s && s <= r.hi })
		}
		for s := rs[0].lo - 10; s <= rs[len(rs)-1].hi+10; s += 1 + rng.Int64N(7) {
			if spared(s) {
				require.True(t, settled(s), "second %d of %v spared but not settled", s, rs)
			}
		}
		// The first range's first second is spared unless its unit reaches
		// the first gap.
		if len(rs) == 1 || rs[0].lo/width < (rs[0].hi+1)/width {
			require.True(t, spared(rs[0].lo), "%v", rs)
		}
	}
}
