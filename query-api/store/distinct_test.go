package store

import (
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
