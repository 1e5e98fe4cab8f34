package sealer

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/leaf"
)

const window = 90 * 24 * time.Hour

// keptSequencer is a sequencer of the deployment's 90-day window at t0.
func keptSequencer(st Store) *sequencer {
	s := newSequencer(st, func() time.Time { return t0 })
	s.window = window
	return s
}

// TestLateLeavesAreStoredInTheLongTermLeavesTableToo: the leaves of
// events older than the window (less the hour's margin) are stored in
// both leaves tables, the others in the leaves table only.
func TestLateLeavesAreStoredInTheLongTermLeavesTableToo(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  time.Duration
		kept bool
	}{
		{"current", time.Minute, false},
		{"backdated inside the window", 10 * 24 * time.Hour, false},
		{"two hours inside the window's edge", window - 2*time.Hour, false},
		{"within the margin of the edge", window - 30*time.Minute, true},
		{"past the window", window + time.Second, true},
		{"200 days old", 200 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			k := st.store(row("ws", t0.Add(-tc.age), "e"))
			out, err := keptSequencer(st).seal(context.Background(), items(k))
			require.NoError(t, err)
			require.Len(t, out.Leaves, 1)
			require.Equal(t, out.Leaves[0], st.leaves["ws"][0], "in the leaves table")
			if tc.kept {
				require.Equal(t, out.Leaves[0], st.kept.leaves["ws"][0], "and the same row in the long-term one")
			} else {
				require.Empty(t, st.kept.leaves, "current traffic writes nothing more")
			}
			require.Zero(t, st.kept.rowLookups, "a stored key is not read back")
			if tc.kept {
				require.Equal(t, 1, st.kept.leafLookups, "a late key's id is looked up in the long-term leaves")
			} else {
				require.Zero(t, st.kept.leafLookups, "others read nothing from the long-term tables")
			}
		})
	}
}

// TestALateLeafIsInTheLongTermTableBeforeTheLeavesTable: when the
// long-term insert fails, the stored hashes are stored and no leaf row
// is (of any event of the round); the replay stores every leaf once, the
// late one in both tables.
func TestALateLeafIsInTheLongTermTableBeforeTheLeavesTable(t *testing.T) {
	st := newMemStore()
	late := st.store(row("ws", t0.Add(-200*24*time.Hour), "late"))
	current := st.store(row("ws", t0.Add(-time.Minute), "current"))
	st.kept.failAppend = true
	_, err := keptSequencer(st).seal(context.Background(), items(current, late))
	require.ErrorIs(t, err, errCrash)
	require.NotEmpty(t, st.hashes["ws"], "the stored hashes come first")
	require.Empty(t, st.leaves["ws"], "no leaf row before the long-term one")

	st.kept.failAppend = false
	out, err := keptSequencer(st).seal(context.Background(), items(current, late))
	require.NoError(t, err)
	require.Equal(t, 2, out.Reclaimed, "the replay takes back both indexes")
	require.Len(t, st.leaves["ws"], 2)
	require.Len(t, st.kept.leaves["ws"], 1)
	require.Equal(t, "late", st.kept.leaves["ws"][1].ID)
	checkLog(t, st, [][]Key{{current, late}})
}

// TestACrashAfterTheLongTermLeafLeavesItThere: the leaves table's insert
// fails after the long-term one: the replay finds the late leaf in the
// long-term table (as after its day was dropped) and gives its id no
// second leaf; the current event's index is taken back.
func TestACrashAfterTheLongTermLeafLeavesItThere(t *testing.T) {
	st := newMemStore()
	late := st.store(row("ws", t0.Add(-200*24*time.Hour), "late"))
	current := st.store(row("ws", t0.Add(-time.Minute), "current"))
	calls := 0
	st.failAppend = func() string {
		calls++
		if calls == 2 { // the first stores the hashes, the second the leaves
			return "before"
		}
		return ""
	}
	_, err := keptSequencer(st).seal(context.Background(), items(current, late))
	require.ErrorIs(t, err, errCrash)
	require.Len(t, st.kept.leaves["ws"], 1)
	require.Empty(t, st.leaves["ws"])

	out, err := keptSequencer(st).seal(context.Background(), items(current, late))
	require.NoError(t, err)
	require.Equal(t, 1, out.Repeats, "the late event's leaf is the long-term one")
	require.Equal(t, 1, out.Reclaimed)
	require.Len(t, st.leaves["ws"], 1)
	require.Equal(t, "current", st.leaves["ws"][0].ID)
	require.Equal(t, "late", st.kept.leaves["ws"][1].ID, "index 1 is the late event's, in the long-term table")
	require.Len(t, st.hashes["ws"], 3, "two leaves' stored hashes: no index given twice")
}

// TestAResendWhoseLeafIsOnlyInTheLongTermTableGetsNoSecondLeaf: a late
// event's leaf day was dropped (its leaf survives in the long-term
// table); a resend of it to a new sealer is a repeat. A sealer without
// the window (the behaviour before) gives it a second leaf.
func TestAResendWhoseLeafIsOnlyInTheLongTermTableGetsNoSecondLeaf(t *testing.T) {
	st := newMemStore()
	late := st.store(row("ws", t0.Add(-200*24*time.Hour), "late"))
	_, err := keptSequencer(st).seal(context.Background(), items(late))
	require.NoError(t, err)
	st.dropLeaves(t0.Add(-window).UnixNano())
	require.Empty(t, st.leaves["ws"])

	out, err := keptSequencer(st).seal(context.Background(), items(late))
	require.NoError(t, err)
	require.Equal(t, 1, out.Repeats)
	require.Empty(t, out.Leaves)
	require.Equal(t, 2, st.kept.leafLookups, "the late key was looked up, once per seal")

	out, err = newSequencer(st, func() time.Time { return t0 }).seal(context.Background(), items(late))
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1, "without the long-term lookup the id gets a second leaf")
}

// TestALateRowOnlyInTheLongTermTableIsReadBackFromIt: a late event read
// back (no offsets row) whose week was dropped after it was copied is
// sealed from the long-term table's row, compared with its record.
func TestALateRowOnlyInTheLongTermTableIsReadBackFromIt(t *testing.T) {
	st := newMemStore()
	r := row("ws", t0.Add(-200*24*time.Hour), "late")
	k := st.keep(r)
	altered := row("ws", t0.Add(-300*24*time.Hour), "altered")
	ka := st.keep(altered)
	record := altered
	record.ActorID = "usr_other"
	out, err := keptSequencer(st).seal(context.Background(), []Item{{Key: k, Record: &r}, {Key: ka, Record: &record}})
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1)
	h := leaf.Hash(&r)
	require.Equal(t, string(h[:]), out.Leaves[0].Hash)
	require.Equal(t, []Key{ka}, out.Mismatches, "a long-term row that differs from its record gets no leaf")
	require.Equal(t, 2, st.kept.rowLookups)
	require.Len(t, st.kept.leaves["ws"], 1)

	out, err = newSequencer(st, func() time.Time { return t0 }).seal(context.Background(), items(Key{"ws", r.TimestampNs, "other"}))
	require.NoError(t, err)
	require.Equal(t, 1, out.Skipped)
}

// TestCurrentTrafficReadsNothingFromTheLongTermTables: a workload of
// current and backdated events, resends and events not stored, within
// the window, sealed with crashes and restarts, looks up nothing in the
// long-term tables and stores nothing there.
func TestCurrentTrafficReadsNothingFromTheLongTermTables(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	st := newMemStore()
	batches := workload(st, rnd, 40)
	st.failAppend = func() string {
		if rnd.IntN(6) == 0 {
			return "between"
		}
		return ""
	}
	s := keptSequencer(st)
	for _, b := range batches {
		for {
			if _, err := s.seal(context.Background(), items(b...)); err == nil {
				break
			}
			s = keptSequencer(st) // restart
		}
	}
	checkLog(t, st, batches)
	require.Positive(t, st.hasLeaves, "backdated keys (72 hours) were looked up in the leaves table")
	require.Zero(t, st.kept.leafLookups+st.kept.rowLookups+st.kept.appended, "and none in the long-term tables")
}

func TestLateBefore(t *testing.T) {
	s := keptSequencer(newMemStore())
	require.Equal(t, t0.Add(-window+time.Hour).UnixNano(), s.lateBefore())
	s.window = 0
	require.Less(t, s.lateBefore(), t0.Add(-100*365*24*time.Hour).UnixNano(), "no window: nothing is late")
}
