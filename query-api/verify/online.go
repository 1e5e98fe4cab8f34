package verify

// Online: a workspace's stored rows against its leaves, stored hashes and
// a checkpoint, read from ClickHouse.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Source is what the online check reads (query-api/store's Store and Log
// together).
type Source interface {
	LatestCheckpoint(ctx context.Context, workspaceID string) (store.Checkpoint, error)
	Leaves(ctx context.Context, workspaceID string, from, to int64, fn func(store.Leaf) error) error
	HashReader(ctx context.Context, workspaceID string) tlog.HashReader
	// Rows calls fn for every stored event of the workspace inside the
	// retention window, each once.
	Rows(ctx context.Context, workspaceID string, fn func(r *migrations.Row) error) error
}

// OnlineOptions configure Online.
type OnlineOptions struct {
	WorkspaceID string
	Known       note.Verifiers
	Origin      string
	// Trusted is a checkpoint held outside ClickHouse (the checkpoints
	// topic, a monitor's state); nil checks against ClickHouse's latest.
	Trusted *Checkpoint
	// RetentionCut: a leaf whose event is older (ns) expired by retention.
	RetentionCut int64
	// UnsealedBefore: a stored row without a leaf received before this
	// time (ns) is a problem; later ones may still be sealed.
	UnsealedBefore int64
}

// Online walks a workspace's log: it recomputes every leaf from the
// stored rows, names each row altered, removed other than by retention,
// or present without a leaf, and recomputes the tree from the rows (and
// the stored hashes of expired leaves) to compare it with the
// checkpoint's signed root. Errors are failures to read.
func Online(ctx context.Context, src Source, o OnlineOptions) (Report, error) {
	var rep Report
	cp, ok, err := onlineCheckpoint(ctx, src, o, &rep)
	if err != nil || !ok {
		return rep, err
	}
	w := &walk{ws: o.WorkspaceID, size: cp.Size, level0: map[int64]tlog.Hash{}, byKey: map[rowKey]store.Leaf{}}
	err = src.Leaves(ctx, o.WorkspaceID, 0, cp.Size, func(lf store.Leaf) error {
		w.byKey[rowKey{lf.TimestampNs, lf.ID}] = lf
		return nil
	})
	if err != nil {
		return rep, err
	}
	withRow := map[int64]bool{}
	unsealed := 0
	err = src.Rows(ctx, o.WorkspaceID, func(r *migrations.Row) error {
		lf, ok := w.byKey[rowKey{r.TimestampNs, r.ID}]
		if !ok {
			if r.ReceivedAtNs < o.UnsealedBefore {
				rep.problem("row %s (timestamp %s): present without a leaf (inserted outside the pipeline?)", r.ID, time.Unix(0, r.TimestampNs).UTC().Format(time.RFC3339Nano))
			} else {
				unsealed++
			}
			return nil
		}
		rep.Checked++
		withRow[lf.Index] = true
		h := leaf.Hash(r)
		if h != lf.Hash {
			rep.problem("row %s (leaf %d): altered: the stored row does not hash to its leaf", r.ID, lf.Index)
		}
		w.level0[lf.Index] = h
		return nil
	})
	if err != nil {
		return rep, err
	}
	expired := 0
	for _, lf := range w.byKey {
		if withRow[lf.Index] {
			continue
		}
		w.level0[lf.Index] = lf.Hash
		if lf.TimestampNs < o.RetentionCut {
			expired++
		} else {
			rep.problem("row %s (leaf %d): removed: the leaf is live but the store no longer holds its event", lf.ID, lf.Index)
		}
	}
	expired += int(cp.Size) - len(w.byKey)
	if expired > 0 {
		rep.note("%d leaves expired by retention", expired)
	}
	if unsealed > 0 {
		rep.note("%d recent rows not sealed yet", unsealed)
	}
	if err := w.checkRoot(src.HashReader(ctx, o.WorkspaceID), cp, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// onlineCheckpoint opens ClickHouse's latest checkpoint and picks the one
// to check against: the trusted one when given. ok is false when there is
// nothing to check against (a problem is reported).
func onlineCheckpoint(ctx context.Context, src Source, o OnlineOptions, rep *Report) (Checkpoint, bool, error) {
	stored, err := src.LatestCheckpoint(ctx, o.WorkspaceID)
	var latest *Checkpoint
	switch {
	case errors.Is(err, store.ErrNoCheckpoint):
	case err != nil:
		return Checkpoint{}, false, err
	default:
		cp, oerr := OpenCheckpoint([]byte(stored.Note), o.Known, o.Origin)
		switch {
		case oerr != nil:
			rep.problem("stored checkpoint of size %d: %v", stored.Size, oerr)
		case cp.WorkspaceID != o.WorkspaceID || cp.Size != stored.Size || cp.Root != stored.Root:
			rep.problem("stored checkpoint of size %d: its columns differ from its signed note (rewritten)", stored.Size)
		default:
			latest = &cp
		}
	}
	if o.Trusted == nil {
		if latest == nil {
			rep.problem("workspace %s: no valid checkpoint to check against", o.WorkspaceID)
			return Checkpoint{}, false, nil
		}
		return *latest, true, nil
	}
	t := *o.Trusted
	if t.WorkspaceID != o.WorkspaceID {
		return Checkpoint{}, false, fmt.Errorf("the trusted checkpoint is of workspace %s", t.WorkspaceID)
	}
	if latest != nil && latest.Size == t.Size && latest.Root != t.Root {
		rep.problem("fork: ClickHouse's checkpoint of size %d has another root than the one held outside", t.Size)
	}
	if latest != nil && latest.Size < t.Size {
		rep.problem("rollback: ClickHouse's latest checkpoint (size %d) is smaller than the one held outside (size %d)", latest.Size, t.Size)
	}
	return t, true, nil
}

// walk recomputes a tree from its leaves' hashes.
type walk struct {
	ws     string
	size   int64
	byKey  map[rowKey]store.Leaf
	level0 map[int64]tlog.Hash // known leaf hashes, recomputed where a row exists
	known  []int64             // sorted indexes of level0
	stored map[int64]tlog.Hash // stored hashes read for expired parts
	need   []int64             // stored hashes a dry run found missing
}

// checkRoot recomputes the root of the checkpoint's tree and compares it
// with the signed root.
func (w *walk) checkRoot(hr tlog.HashReader, cp Checkpoint, rep *Report) error {
	if cp.Size == 0 {
		return nil
	}
	w.known = make([]int64, 0, len(w.level0))
	for i := range w.level0 {
		w.known = append(w.known, i)
	}
	slices.Sort(w.known)
	w.stored = map[int64]tlog.Hash{}
	w.node(0, cp.Size) // dry run: collect the stored hashes needed
	for len(w.need) > 0 {
		chunk := w.need[:min(len(w.need), 5000)]
		w.need = w.need[len(chunk):]
		hs, err := hr.ReadHashes(chunk)
		if err != nil {
			rep.problem("stored hashes of expired leaves are missing: %v", err)
			return nil
		}
		for k, i := range chunk {
			w.stored[i] = hs[k]
		}
	}
	root := w.node(0, cp.Size)
	if root != cp.Root {
		rep.problem("the log of workspace %s does not match checkpoint %d signed by %s: the tree recomputed from the stored rows has root %s, the checkpoint %s (rows and stored hashes rewritten)",
			w.ws, cp.Size, cp.KeyName, root, cp.Root)
	}
	return nil
}

// node returns the RFC 6962 hash of leaves [lo, hi): from the known leaf
// hashes, and for a complete subtree without a known leaf (expired) from
// its stored hash. In a dry run (stored hash not read yet) it records the
// index in w.need and returns a zero hash.
func (w *walk) node(lo, hi int64) tlog.Hash {
	n := hi - lo
	if level, ok := completeSubtree(lo, n); ok && !w.anyKnown(lo, hi) {
		idx := tlog.StoredHashIndex(level, lo>>level)
		h, ok := w.stored[idx]
		if !ok {
			w.need = append(w.need, idx)
		}
		return h
	}
	if n == 1 {
		return w.level0[lo]
	}
	k := int64(1)
	for k*2 < n {
		k *= 2
	}
	return tlog.NodeHash(w.node(lo, lo+k), w.node(lo+k, hi))
}

// completeSubtree reports whether [lo, lo+n) is a complete subtree and
// its level.
func completeSubtree(lo, n int64) (int, bool) {
	if n&(n-1) != 0 {
		return 0, false
	}
	level := 0
	for int64(1)<<level < n {
		level++
	}
	return level, lo%n == 0
}

// anyKnown reports whether a leaf hash of [lo, hi) is known.
func (w *walk) anyKnown(lo, hi int64) bool {
	i, _ := slices.BinarySearch(w.known, lo)
	return i < len(w.known) && w.known[i] < hi
}
