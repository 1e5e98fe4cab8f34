package sealer

// One workspace's log as the sealer holds it in memory: its size, the
// right edge of its stored hashes, the leaves it knows of, and the
// checkpoint it signed last.

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// Key names a stored event, as the events table's sorting key does.
type Key struct {
	WorkspaceID string
	TimestampNs int64
	ID          string
}

// leafKey is a Key within one workspace.
type leafKey struct {
	ts int64
	id string
}

// tree is one workspace's log. It is owned by the sealer's loop.
type tree struct {
	ws   string
	size int64
	// edge holds the stored hashes of the complete subtrees that make up
	// [0, size) (edgeIndexes): all that appending and the root need.
	edge map[int64]tlog.Hash
	// seen are the keys of the leaves whose event timestamp is at least
	// seenFrom: every such leaf of the workspace is in it (loaded at
	// takeover, then added as sealed). A key older than seenFrom is looked
	// up in ClickHouse.
	seen     map[leafKey]struct{}
	seenFrom int64
	// seenIDs are the ids of seen: an id with a leaf gets no second one,
	// whatever the timestamp of the stored row.
	seenIDs map[string]struct{}
	// orphans are leaf indexes whose stored hashes are stored but whose
	// leaf row is not (a crash between the two inserts), by leaf hash: the
	// replayed event with that hash takes its index back.
	orphans map[tlog.Hash]int64
	// signed is the size of the last signed checkpoint, signedAt when.
	signed   int64
	signedAt time.Time
	// used is when a batch last touched the log.
	used time.Time
	// noted counts the tiles with signed notes (tiles.go); times are the
	// event times (Unix seconds) of leaves of tiles not noted yet, and
	// tileHashes the hashes of complete tiles not noted yet, both as
	// sealed by this sealer.
	noted      int64
	times      map[int64]int64
	tileHashes map[int64]tlog.Hash
}

// State is a workspace's log as stored: what a sealer taking it over
// starts from (see Store.Load).
type State struct {
	// Size is the number of leaves, as the stored hashes count them.
	Size int64
	// Edge are the stored hashes at edgeIndexes(Size).
	Edge map[int64]tlog.Hash
	// Seen are the leaves with an event timestamp of at least SeenFrom.
	Seen     []Key
	SeenFrom int64
	// Orphans map the leaf hash of each index below Size that has stored
	// hashes but no leaf row, among the last indexes (see Store.Load).
	Orphans map[tlog.Hash]int64
	// Signed is the size of the latest checkpoint (0 when none), SignedAt
	// when it was signed.
	Signed   int64
	SignedAt time.Time
	// Note is the latest checkpoint's signed note ("" when none).
	Note string
	// Noted is the number of tiles with signed notes.
	Noted int64
}

func newTree(ws string, st State) *tree {
	t := &tree{ws: ws, size: st.Size, edge: st.Edge, seen: make(map[leafKey]struct{}, len(st.Seen)), seenIDs: make(map[string]struct{}, len(st.Seen)),
		seenFrom: st.SeenFrom, orphans: st.Orphans, signed: st.Signed, signedAt: st.SignedAt,
		noted: st.Noted, times: map[int64]int64{}, tileHashes: map[int64]tlog.Hash{}}
	if t.edge == nil {
		t.edge = map[int64]tlog.Hash{}
	}
	if t.orphans == nil {
		t.orphans = map[tlog.Hash]int64{}
	}
	for _, k := range st.Seen {
		t.seen[leafKey{k.TimestampNs, k.ID}] = struct{}{}
		t.seenIDs[k.ID] = struct{}{}
	}
	return t
}

// edgeIndexes are the stored hash indexes of the maximal complete subtrees
// of a tree of n leaves, left to right: one per bit set in n.
func edgeIndexes(n int64) []int64 {
	var out []int64
	for l := 62; l >= 0; l-- {
		if n&(1<<l) != 0 {
			out = append(out, tlog.StoredHashIndex(l, (n>>l)-1))
		}
	}
	return out
}

// SizeOf returns the size of a tree whose stored hashes are numbered
// 0..count-1 (count = the highest stored index + 1, 0 for none), or an
// error when count is not the stored hash count of any size.
func SizeOf(count int64) (int64, error) {
	n := int64(sort.Search(int(count)+1, func(n int) bool { return tlog.StoredHashCount(int64(n)) >= count }))
	if tlog.StoredHashCount(n) != count {
		return 0, fmt.Errorf("%d stored hashes is no tree's count", count)
	}
	return n, nil
}

// ReadHashes implements tlog.HashReader over the right edge.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := t.edge[x]
		if !ok {
			return nil, fmt.Errorf("workspace %s: stored hash %d is not on the right edge of size %d", t.ws, x, t.size)
		}
		out[i] = h
	}
	return out, nil
}

// appendLeaf appends a leaf hash as leaf t.size and appends to dst the
// stored hashes it adds, level by level from the leaf's (index
// StoredHashIndex(0, size) + level): those of
// tlog.StoredHashesForRecordHash, computed from the right edge directly.
// The leaf completes one subtree per trailing 1 bit of size, each
// the node hash of the edge's subtree of that level and the one below;
// those edge hashes leave the edge, and the new top joins it. On error
// (an edge hash missing) the tree is unchanged.
func (t *tree) appendLeaf(h tlog.Hash, dst []migrations.StoredHash) ([]migrations.StoredHash, error) {
	n := t.size
	m := bits.TrailingZeros64(uint64(n + 1)) // subtrees the leaf completes
	for l := range m {
		if _, ok := t.edge[tlog.StoredHashIndex(l, n>>l-1)]; !ok {
			return dst, fmt.Errorf("workspace %s: stored hash %d is not on the right edge of size %d", t.ws, tlog.StoredHashIndex(l, n>>l-1), n)
		}
	}
	first := tlog.StoredHashIndex(0, n)
	dst = append(dst, migrations.StoredHash{WorkspaceID: t.ws, Index: uint64(first), Hash: string(h[:])})
	for l := range m {
		x := tlog.StoredHashIndex(l, n>>l-1)
		h = tlog.NodeHash(t.edge[x], h)
		delete(t.edge, x)
		dst = append(dst, migrations.StoredHash{WorkspaceID: t.ws, Index: uint64(first + int64(l) + 1), Hash: string(h[:]), Level: uint8(l + 1)})
		if l+1 == tilenote.Height { // the leaf completes its tile
			t.tileHashes[n>>tilenote.Height] = h
		}
	}
	t.edge[first+int64(m)] = h
	t.size++
	return dst, nil
}

// root returns the tree's root hash.
func (t *tree) root() (tlog.Hash, error) { return tlog.TreeHash(t.size, t) }

// remember adds a sealed leaf's key (its id is in seenIDs already: the
// round that assigned the leaf put it there); when the set holds more
// than limit keys, the older half (by event timestamp) is forgotten and
// seenFrom raised past it.
func (t *tree) remember(k leafKey, limit int) {
	t.seen[k] = struct{}{}
	if len(t.seen) <= limit {
		return
	}
	ts := make([]int64, 0, len(t.seen))
	for k := range t.seen {
		ts = append(ts, k.ts)
	}
	slices.Sort(ts)
	cut := ts[len(ts)/2]
	if cut == ts[len(ts)-1] { // one timestamp throughout: keep them
		return
	}
	for k := range t.seen {
		if k.ts < cut {
			delete(t.seen, k)
			delete(t.seenIDs, k.id)
		}
	}
	t.seenFrom = max(t.seenFrom, cut)
}

// Orphans returns the orphans among leaf indexes [from, size): each index
// whose leaf hash (its level-0 stored hash, by stored index in levelZero)
// is stored but which has no leaf row (not in withLeaf), by that hash.
func Orphans(from, size int64, levelZero map[int64]tlog.Hash, withLeaf map[int64]bool) map[tlog.Hash]int64 {
	out := map[tlog.Hash]int64{}
	for i := max(from, 0); i < size; i++ {
		if withLeaf[i] {
			continue
		}
		if h, ok := levelZero[tlog.StoredHashIndex(0, i)]; ok {
			out[h] = i
		}
	}
	return out
}
