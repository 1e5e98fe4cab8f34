package sealer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newSequencer(st Store, now func() time.Time) *sequencer {
	return &sequencer{store: st, now: now, trees: map[string]*tree{}, maxSeen: 1000, lookback: time.Hour, recent: 1000}
}

// items are keys without their records' rows.
func items(keys ...Key) []Item {
	out := make([]Item, len(keys))
	for i, k := range keys {
		out[i] = Item{Key: k}
	}
	return out
}

func row(ws string, at time.Time, id string) migrations.Row {
	return migrations.Row{WorkspaceID: ws, Timestamp: at.Truncate(time.Second), TimestampNs: at.UnixNano(), ID: id,
		Event: "Source Created", Changes: "{}", Properties: "{}", ReceivedAt: at, ReceivedAtNs: at.UnixNano()}
}

// workload returns batches of keys as a partition delivers them: events of
// three workspaces, some stored, some not (dead-lettered), some repeated
// within and across batches, some backdated by days.
func workload(st *memStore, rnd *rand.Rand, batches int) [][]Key {
	var out [][]Key
	var all []Key
	n := 0
	for b := 0; b < batches; b++ {
		var keys []Key
		for range 1 + rnd.IntN(40) {
			switch x := rnd.IntN(10); {
			case x == 0 && len(all) > 0: // a resend of an earlier event
				keys = append(keys, all[rnd.IntN(len(all))])
			case x == 1: // not stored by the writer
				keys = append(keys, Key{"ws_dead", t0.UnixNano(), fmt.Sprintf("dead-%d", n)})
				n++
			default:
				at := t0.Add(time.Duration(n) * time.Millisecond)
				if x == 2 {
					at = at.Add(-72 * time.Hour) // backdated
				}
				k := st.store(row(fmt.Sprintf("ws_%d", rnd.IntN(3)), at, fmt.Sprintf("ev-%d", n)))
				n++
				keys = append(keys, k)
				all = append(all, k)
			}
		}
		if rnd.IntN(4) == 0 && len(keys) > 1 { // a repeat inside the batch
			keys = append(keys, keys[0])
		}
		out = append(out, keys)
	}
	return out
}

// checkLog asserts that every stored key of the workload has exactly one
// leaf, that each workspace's indexes are 0..n-1 in the order the keys
// first arrived, and that the stored hashes are those of the leaves.
func checkLog(t *testing.T, st *memStore, batches [][]Key) {
	t.Helper()
	want := map[string][]Key{}
	seen := map[Key]bool{}
	for _, b := range batches {
		for _, k := range b {
			if _, stored := st.rows[k]; stored && !seen[k] {
				seen[k] = true
				want[k.WorkspaceID] = append(want[k.WorkspaceID], k)
			}
		}
	}
	require.Empty(t, st.leaves["ws_dead"], "an event that is not stored gets no leaf")
	for ws, keys := range want {
		require.Len(t, st.leaves[ws], len(keys), ws)
		hashes := map[int64]tlog.Hash{}
		r := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(xs))
			for i, x := range xs {
				out[i] = hashes[x]
			}
			return out, nil
		})
		for i, k := range keys {
			l, ok := st.leaves[ws][uint64(i)]
			require.True(t, ok, "%s: leaf %d", ws, i)
			require.Equal(t, k, Key{ws, l.TimestampNs, l.ID}, "%s: leaf %d", ws, i)
			r0 := st.rows[k]
			h := leaf.Hash(&r0)
			require.Equal(t, string(h[:]), l.Hash)
			add, err := tlog.StoredHashesForRecordHash(int64(i), h, r)
			require.NoError(t, err)
			for j, sh := range add {
				hashes[tlog.StoredHashIndex(0, int64(i))+int64(j)] = sh
			}
		}
		want, err := tlog.TreeHash(int64(len(keys)), r)
		require.NoError(t, err)
		got, err := tlog.TreeHash(int64(len(keys)), st.hashReader(ws))
		require.NoError(t, err)
		require.Equal(t, want, got, "%s: the stored hashes make the root of the leaves", ws)
		require.Len(t, st.hashes[ws], int(tlog.StoredHashCount(int64(len(keys)))), "%s: no stored hash beyond the leaves", ws)
	}
}

func TestSealGivesEachStoredEventOneLeafInOrder(t *testing.T) {
	st := newMemStore()
	batches := workload(st, rand.New(rand.NewPCG(1, 2)), 60)
	s := newSequencer(st, func() time.Time { return t0 })
	var repeats, skipped int
	for _, b := range batches {
		out, err := s.seal(context.Background(), items(b...))
		require.NoError(t, err)
		repeats += out.Repeats
		skipped += out.Skipped
	}
	require.NotZero(t, repeats, "the workload repeats events")
	require.NotZero(t, skipped, "the workload has events that are not stored")
	checkLog(t, st, batches)
}

// TestSealAfterCrashesAssignsTheSameIndexes fails the stores' appends at
// random, before anything or between the stored hashes and (part of) the
// leaves, and restarts the sealer each time (a new sequencer that loads
// the logs from the store) with the same batch, as a replay from the
// committed offset does: the log ends as without crashes, with no index
// assigned twice and no gap.
func TestSealAfterCrashesAssignsTheSameIndexes(t *testing.T) {
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		st := newMemStore()
		batches := workload(st, rnd, 40)
		crashes, reclaimed := 0, 0
		st.failAppend = func() string {
			switch rnd.IntN(5) {
			case 0:
				crashes++
				return "before"
			case 1:
				crashes++
				return "between"
			}
			return ""
		}
		s := newSequencer(st, func() time.Time { return t0 })
		s.recent = 200
		for _, b := range batches {
			for {
				out, err := s.seal(context.Background(), items(b...))
				if err == nil {
					reclaimed += out.Reclaimed
					break
				}
				require.ErrorIs(t, err, errCrash)
				s = newSequencer(st, func() time.Time { return t0 }) // restart
				s.recent = 200
			}
		}
		require.NotZero(t, crashes)
		require.NotZero(t, reclaimed, "replays took back indexes left without a leaf")
		checkLog(t, st, batches)
	}
}

// TestAnOldResendGetsNoSecondLeaf: with a small set of known keys, a
// resend of an event sealed long before (its key forgotten in memory, or
// never loaded by a new sealer) is found in the store.
func TestAnOldResendGetsNoSecondLeaf(t *testing.T) {
	st := newMemStore()
	now := t0
	s := newSequencer(st, func() time.Time { return now })
	s.maxSeen = 4
	var keys []Key
	for i := range 20 {
		keys = append(keys, st.store(row("ws_1", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("e", i))))
	}
	for _, k := range keys {
		_, err := s.seal(context.Background(), items(k))
		require.NoError(t, err)
	}
	require.Less(t, len(s.trees["ws_1"].seen), 20, "keys were forgotten")
	out, err := s.seal(context.Background(), items(keys[:3]...))
	require.NoError(t, err)
	require.Equal(t, 3, out.Repeats)
	require.Empty(t, out.Leaves)

	now = t0.Add(90 * 24 * time.Hour) // a new sealer months later
	s = newSequencer(st, func() time.Time { return now })
	out, err = s.seal(context.Background(), items(keys[5:7]...))
	require.NoError(t, err)
	require.Equal(t, 2, out.Repeats)
	require.Len(t, st.leaves["ws_1"], 20)
}

func TestSizeOf(t *testing.T) {
	for n := int64(0); n < 600; n++ {
		got, err := SizeOf(tlog.StoredHashCount(n))
		require.NoError(t, err)
		require.Equal(t, n, got)
	}
	_, err := SizeOf(tlog.StoredHashCount(3) + 1)
	require.Error(t, err)
}
