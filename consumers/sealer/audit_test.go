package sealer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// LeavesAt follows ClickHouseStore.LeavesAt.
func (m *memStore) LeavesAt(_ context.Context, at []LeafAt) (map[LeafAt]StoredLeaf, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audits += len(at)
	out := map[LeafAt]StoredLeaf{}
	for _, a := range at {
		var sl StoredLeaf
		if l, ok := m.leaves[a.WorkspaceID][uint64(a.Index)]; ok {
			l.SealedAt = time.Time{}
			sl.Rows = append(sl.Rows, l)
		}
		if h, ok := m.hashes[a.WorkspaceID][storedLeaf(a.Index)]; ok {
			sl.Hash = h.Hash
		}
		if len(sl.Rows) > 0 || sl.Hash != "" {
			out[a] = sl
		}
	}
	return out, nil
}

// heldOf is every log's size and root as s holds them.
func heldOf(t *testing.T, s *sequencer) map[string]heldTree {
	out := map[string]heldTree{}
	for ws, tr := range s.trees {
		root, err := tr.root()
		require.NoError(t, err)
		out[ws] = heldTree{tr.size, root}
	}
	return out
}

// sealedLogs seals n events in each of the workspaces and returns the
// sequencer holding their logs.
func sealedLogs(t *testing.T, st *memStore, wss []string, n int) *sequencer {
	s := newSequencer(st, func() time.Time { return t0 })
	var its []Item
	for _, ws := range wss {
		for i := range n {
			it := placed(int64(len(its)), row(ws, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("e%d", i)))
			st.store(*it.Record)
			st.record(storedAt(it, it.Record.ReceivedAtNs))
			its = append(its, it)
		}
	}
	out, err := s.seal(context.Background(), its)
	require.NoError(t, err)
	require.Len(t, out.Leaves, n*len(wss))
	return s
}

// TestTheAuditFindsARowChangedAfterItWasSealed: an event row changed
// after its leaf was sealed, and a leaf row rewritten to match another
// row, are found by an audit covering the logs; the others match.
func TestTheAuditFindsARowChangedAfterItWasSealed(t *testing.T) {
	st := newMemStore()
	s := sealedLogs(t, st, []string{"ws_1", "ws_2"}, 10)
	a, err := auditLeaves(context.Background(), st, newSampler(1000).pickLeaves(s.trees), heldOf(t, s))
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 20}, a.Results, "untouched: every leaf matches")
	require.Empty(t, a.Altered)

	r := st.rows[Key{"ws_1", t0.Add(3 * time.Millisecond).UnixNano(), "e3"}]
	r.ActorID = "usr_evil"
	st.store(r)
	l := st.leaves["ws_2"][7]
	h := leaf.Hash(&r)
	l.Hash = string(h[:]) // the leaf row rewritten, the tree's hash not
	st.leaves["ws_2"][7] = l
	a, err = auditLeaves(context.Background(), st, newSampler(1000).pickLeaves(s.trees), heldOf(t, s))
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 18, sampleAltered: 2}, a.Results)
	require.ElementsMatch(t, []AlteredLeaf{
		{At: LeafAt{"ws_1", 3}, ID: "e3", Why: "the stored event does not hash to its leaf"},
		{At: LeafAt{"ws_2", 7}, ID: "e7", Why: "the leaf row's hash is not the tree's"},
	}, a.Altered)
}

// TestTheAuditIsBoundedAndCoversEveryLog: a pass reads at most its size
// of leaves, each within its log, and over passes every log and index
// range is reached; empty logs are never picked.
func TestTheAuditIsBoundedAndCoversEveryLog(t *testing.T) {
	st := newMemStore()
	s := sealedLogs(t, st, []string{"ws_1", "ws_2", "ws_3"}, 50)
	s.trees["ws_empty"] = newTree("ws_empty", State{})
	p := newSampler(5)
	seen := map[string]map[int64]bool{}
	for range 200 {
		at := p.pickLeaves(s.trees)
		require.NotEmpty(t, at)
		require.LessOrEqual(t, len(at), 5)
		dup := map[LeafAt]bool{}
		for _, a := range at {
			require.False(t, dup[a], "distinct")
			dup[a] = true
			require.NotEqual(t, "ws_empty", a.WorkspaceID)
			require.GreaterOrEqual(t, a.Index, int64(0))
			require.Less(t, a.Index, s.trees[a.WorkspaceID].size)
			if seen[a.WorkspaceID] == nil {
				seen[a.WorkspaceID] = map[int64]bool{}
			}
			seen[a.WorkspaceID][a.Index] = true
		}
	}
	require.Len(t, seen, 3)
	for ws, idx := range seen {
		require.Greater(t, len(idx), 40, "%s: most of its 50 leaves reached in 200 passes", ws)
	}
	before := st.audits
	a, err := auditLeaves(context.Background(), st, p.pickLeaves(s.trees), heldOf(t, s))
	require.NoError(t, err)
	require.LessOrEqual(t, st.audits-before, 5)
	require.Equal(t, st.audits-before, a.Results[sampleMatch])
	require.Empty(t, newSampler(3).pickLeaves(map[string]*tree{"ws": newTree("ws", State{})}), "no leaves, nothing picked")
}

// TestAuditLeaf: only stored parts that exist and disagree are altered.
func TestAuditLeaf(t *testing.T) {
	r := row("ws_1", t0, "e1")
	h := leaf.Hash(&r)
	good := migrations.Leaf{WorkspaceID: "ws_1", Index: 4, TimestampNs: r.TimestampNs, ID: "e1", Hash: string(h[:])}
	other := good
	other.ID, other.Hash = "e2", "another hash of 32 bytes........"
	changed := r
	changed.Properties = `{"amount":1000000}`
	cases := []struct {
		name string
		sl   StoredLeaf
		rows []migrations.Row
		want string
	}{
		{"all agree", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash}, []migrations.Row{r}, sampleMatch},
		{"the event changed", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash}, []migrations.Row{changed}, sampleAltered},
		{"the leaf row changed", StoredLeaf{Rows: []migrations.Leaf{other}, Hash: good.Hash}, []migrations.Row{r}, sampleAltered},
		{"two leaf rows at the index", StoredLeaf{Rows: []migrations.Leaf{good, other}, Hash: good.Hash}, []migrations.Row{r}, sampleAltered},
		{"no leaf row (expired)", StoredLeaf{Hash: good.Hash}, nil, sampleAbsent},
		{"no stored hash", StoredLeaf{Rows: []migrations.Leaf{good}}, []migrations.Row{r}, sampleAbsent},
		{"the event not visible (expired, kept elsewhere)", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash}, nil, sampleAbsent},
		{"an unmerged forged copy beside the original", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash}, []migrations.Row{r, changed}, sampleAltered},
		{"two stored hashes at the index", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash, Forked: true}, []migrations.Row{r}, sampleAltered},
		{"unmerged equal copies", StoredLeaf{Rows: []migrations.Leaf{good}, Hash: good.Hash}, []migrations.Row{r, r}, sampleMatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := auditLeaf(c.sl, c.rows)
			require.Equal(t, c.want, got)
		})
	}
}

// TestTheAuditProvesLeavesAgainstTheTreeItHolds: an event, its leaf row
// and its level-0 stored hash rewritten to agree with each other pass
// the stored parts' checks, and are found by the inclusion proof against
// the root the sealer holds; so is a changed stored hash above the leaf.
func TestTheAuditProvesLeavesAgainstTheTreeItHolds(t *testing.T) {
	st := newMemStore()
	s := sealedLogs(t, st, []string{"ws_1"}, 20)
	held := heldOf(t, s)
	k := Key{"ws_1", t0.Add(5 * time.Millisecond).UnixNano(), "e5"}
	r := st.rows[k]
	r.ActorID = "usr_evil"
	st.store(r)
	h := leaf.Hash(&r)
	l := st.leaves["ws_1"][5]
	l.Hash = string(h[:])
	st.leaves["ws_1"][5] = l
	sh := st.hashes["ws_1"][storedLeaf(5)]
	sh.Hash = string(h[:])
	st.hashes["ws_1"][storedLeaf(5)] = sh

	at := []LeafAt{{"ws_1", 5}, {"ws_1", 6}}
	a, err := auditLeaves(context.Background(), st, at, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 2}, a.Results, "the stored parts agree with each other")
	a, err = auditLeaves(context.Background(), st, at, held)
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 1, sampleAltered: 1}, a.Results)
	require.Equal(t, LeafAt{"ws_1", 5}, a.Altered[0].At)
	require.Contains(t, a.Altered[0].Why, "not in the tree the sealer holds")

	// A stored hash of the proof of leaf 14 changed: its sibling subtree
	// of leaves 12 and 13 (level 1).
	x := tlog.StoredHashIndex(1, 6)
	up := st.hashes["ws_1"][x]
	up.Hash = strings.Repeat("x", 32)
	st.hashes["ws_1"][x] = up
	a, err = auditLeaves(context.Background(), st, []LeafAt{{"ws_1", 14}, {"ws_1", 2}}, held)
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 1, sampleAltered: 1}, a.Results)
	require.Equal(t, LeafAt{"ws_1", 14}, a.Altered[0].At)
}
