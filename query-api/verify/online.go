package verify

// Online: a workspace's stored rows against its leaves, stored hashes and
// a checkpoint, read from ClickHouse.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// Source is what the online check reads (query-api/store's Store and Log
// together).
type Source interface {
	LatestCheckpoint(ctx context.Context, workspaceID string) (store.Checkpoint, error)
	Leaves(ctx context.Context, workspaceID string, from, to int64, fn func(store.Leaf) error) error
	HashReader(ctx context.Context, workspaceID string) tlog.HashReader
	// LeafIndexes returns the leaf indexes (below size) of stored events.
	LeafIndexes(ctx context.Context, workspaceID string, keys []store.Key, size int64) (map[store.Key]int64, error)
	// Rows calls fn for every stored row of the workspace inside the
	// retention window, unmerged copies of an event included.
	Rows(ctx context.Context, workspaceID string, fn func(r *migrations.Row) error) error
	// TileNotes returns the workspace's stored tile notes.
	TileNotes(ctx context.Context, workspaceID string) (store.TileNotes, error)
}

// OnlineOptions configure Online.
type OnlineOptions struct {
	WorkspaceID string
	Known       note.Verifiers
	Origin      string
	// Trusted is a checkpoint held outside ClickHouse (the checkpoints
	// topic, a monitor's state); nil checks against ClickHouse's latest.
	// When ClickHouse's latest is larger, both are checked.
	Trusted *Checkpoint
	// AssumeRetention counts a leaf whose event row is gone as expired by
	// retention when its leaf row is gone too or names an event older
	// than RetentionCut (ns). Neither is authenticated (an attacker who
	// deletes a row and its leaf row, or rewrites the leaf's timestamp,
	// passes), so by default every such leaf is a problem.
	AssumeRetention bool
	RetentionCut    int64
	// UnsealedAfter: a stored row without a leaf received after this time
	// (ns) may not be sealed yet (a note); one received earlier, or after
	// ReceivedBy (in the future), is a problem.
	UnsealedAfter, ReceivedBy int64
	// CaughtUp, when set, reports whether the sealer has sealed every
	// record on Kafka (its group's lag is 0). Asked after the rows are
	// read: when it has, a row still without a leaf never came through
	// Kafka, whatever its received_at says.
	CaughtUp func(ctx context.Context) (bool, error)
}

// Online walks a workspace's log: it recomputes every leaf from the
// stored rows, names each row altered, each leaf whose event the store no
// longer holds, and each row present without a leaf, and recomputes the
// tree from the rows (and the stored hashes of leaves without rows) to
// compare it with the signed roots of the checkpoints. Errors are
// failures to read.
func Online(ctx context.Context, src Source, o OnlineOptions) (Report, error) {
	var rep Report
	cps, err := onlineCheckpoints(ctx, src, o, &rep)
	if err != nil || len(cps) == 0 {
		return rep, err
	}
	size := cps[len(cps)-1].Size
	w := &walk{ws: o.WorkspaceID, level0: map[int64]tlog.Hash{}, byKey: map[rowKey]store.Leaf{}}
	err = src.Leaves(ctx, o.WorkspaceID, 0, math.MaxInt64, func(lf store.Leaf) error {
		w.byKey[rowKey{lf.TimestampNs, lf.ID}] = lf
		return nil
	})
	if err != nil {
		return rep, err
	}
	w.reportDuplicateIDs(&rep)
	withRow := map[int64]bool{}
	seen := map[rowKey]bool{}
	var later int
	var recent []migrations.Row
	err = src.Rows(ctx, o.WorkspaceID, func(r *migrations.Row) error {
		key := rowKey{r.TimestampNs, r.ID}
		lf, ok := w.byKey[key]
		if seen[key] { // another copy of a row already seen
			if ok && lf.Index < size && leaf.Hash(r) != lf.Hash {
				rep.problem("row %s (leaf %d): altered: an unmerged copy of the row does not hash to its leaf", r.ID, lf.Index)
			}
			return nil
		}
		seen[key] = true
		switch {
		case !ok && r.ReceivedAtNs > o.UnsealedAfter && r.ReceivedAtNs <= o.ReceivedBy:
			recent = append(recent, *r)
		case !ok:
			unleafed(&rep, r, "")
		case lf.Index >= size:
			later++
		default:
			rep.Checked++
			withRow[lf.Index] = true
			h := leaf.Hash(r)
			if h != lf.Hash {
				rep.problem("row %s (leaf %d): altered: the stored row does not hash to its leaf", r.ID, lf.Index)
			}
			w.level0[lf.Index] = h
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	w.markGone(size, withRow)
	if err := checkRecent(ctx, src, o, recent, &rep); err != nil {
		return rep, err
	}
	if later > 0 {
		rep.note("%d rows sealed after checkpoint %d, not checked", later, size)
	}
	// The roots first: only a tree that matches its signed roots
	// authenticates the tile hashes that bind the tile notes. Their
	// problems are reported after the leaves'.
	var roots Report
	hr := src.HashReader(ctx, o.WorkspaceID)
	matched := true
	for _, cp := range cps {
		matched = w.checkRoot(hr, cp, &roots) && matched
	}
	var x *expiry
	if matched {
		if x, err = w.loadExpiry(ctx, src, o, size); err != nil {
			return rep, err
		}
	}
	w.reportGone(&rep, o, size, x)
	rep.Problems = append(rep.Problems, roots.Problems...)
	return rep, nil
}

// unleafed reports a stored row that no leaf names.
func unleafed(rep *Report, r *migrations.Row, why string) {
	rep.problem("row %s (timestamp %s, received %s): present without a leaf (inserted outside the pipeline?)%s", r.ID,
		time.Unix(0, r.TimestampNs).UTC().Format(time.RFC3339Nano), time.Unix(0, r.ReceivedAtNs).UTC().Format(time.RFC3339Nano), why)
}

// checkRecent decides about the recently received rows without a leaf:
// when the sealer has caught up with Kafka since they were read, each
// must have a leaf by now; otherwise (or when Kafka cannot tell) they may
// not be sealed yet (a note).
func checkRecent(ctx context.Context, src Source, o OnlineOptions, recent []migrations.Row, rep *Report) error {
	if len(recent) == 0 {
		return nil
	}
	caughtUp := false
	if o.CaughtUp != nil {
		var err error
		if caughtUp, err = o.CaughtUp(ctx); err != nil {
			rep.note("the sealer's lag could not be read: %v", err)
		}
	}
	if !caughtUp {
		rep.note("%d recent rows not sealed yet (the sealer's lag was not checked, or not 0)", len(recent))
		return nil
	}
	keys := make([]store.Key, len(recent))
	for i, r := range recent {
		keys[i] = store.Key{TimestampNs: r.TimestampNs, ID: r.ID}
	}
	sealed, err := src.LeafIndexes(ctx, o.WorkspaceID, keys, math.MaxInt64)
	if err != nil {
		return err
	}
	for i := range recent {
		if _, ok := sealed[keys[i]]; !ok {
			unleafed(rep, &recent[i], " (the sealer had sealed everything on Kafka)")
		}
	}
	if n := len(sealed); n > 0 {
		rep.note("%d recent rows sealed while the check ran, not checked", n)
	}
	return nil
}

// reportDuplicateIDs reports an event id that names more than one leaf:
// each event is one leaf.
func (w *walk) reportDuplicateIDs(rep *Report) {
	byID := map[string][]int64{}
	for _, lf := range w.byKey {
		byID[lf.ID] = append(byID[lf.ID], lf.Index)
	}
	var dups []string
	for id, idx := range byID {
		if len(idx) > 1 {
			slices.Sort(idx)
			dups = append(dups, fmt.Sprintf("event id %s has %d leaves %v: an event is one leaf (a resend stored and sealed again?)", id, len(idx), idx))
		}
	}
	slices.Sort(dups)
	for _, d := range dups {
		rep.problem("%s", d)
	}
}

// markGone finds the leaves below size whose event the store no longer
// holds (w.gone, w.hasLeaf) and takes their stored leaf hashes for the
// tree's recomputation.
func (w *walk) markGone(size int64, withRow map[int64]bool) {
	w.hasLeaf = make(map[int64]bool, len(w.byKey))
	for _, lf := range w.byKey {
		if lf.Index >= size {
			continue
		}
		w.hasLeaf[lf.Index] = true
		if withRow[lf.Index] {
			continue
		}
		w.level0[lf.Index] = lf.Hash
		w.gone = append(w.gone, lf)
	}
}

// reportGone reports the leaves below size whose event the store no
// longer holds: expired when the sealer's signed tile notes (x, nil when
// the tree did not match its roots) prove their events older than the
// window, or when AssumeRetention says so; problems otherwise.
func (w *walk) reportGone(rep *Report, o OnlineOptions, size int64, x *expiry) {
	var gone []string
	proven, assumed := 0, 0
	for _, lf := range w.gone {
		switch {
		case x.expired(lf.Index):
			proven++
		case o.AssumeRetention && lf.TimestampNs < o.RetentionCut:
			assumed++
		default:
			gone = append(gone, fmt.Sprintf("row %s (leaf %d): missing: the store no longer holds its event (removed, or expired by retention: not provable)", lf.ID, lf.Index))
		}
	}
	noLeafRow := 0
	for i := int64(0); i < size; i++ {
		switch {
		case w.hasLeaf[i]:
		case x.expired(i):
			proven++
		case o.AssumeRetention:
			assumed++
		default:
			noLeafRow++
		}
	}
	if noLeafRow > 0 {
		gone = append(gone, fmt.Sprintf("%d leaves: missing with their leaf rows (removed, or expired by retention: not provable)", noLeafRow))
	}
	slices.Sort(gone)
	for i, g := range gone {
		if i == 100 {
			rep.problem("%d more leaves missing", len(gone)-100)
			break
		}
		rep.problem("%s", g)
	}
	if proven > 0 {
		rep.note("%d leaves expired by retention (their event times, signed in the sealer's tile notes, are older than the window)", proven)
	}
	if assumed > 0 {
		rep.note("%d leaves expired by retention (assumed: -assume-retention; not authenticated)", assumed)
	}
}

// onlineCheckpoints opens ClickHouse's latest checkpoint and returns the
// checkpoints to check, smallest first: the trusted one (when given) and
// ClickHouse's latest when it is valid and not smaller. None means there
// is nothing to check against (a problem is reported).
func onlineCheckpoints(ctx context.Context, src Source, o OnlineOptions, rep *Report) ([]Checkpoint, error) {
	latest, err := storedLatest(ctx, src, o, rep)
	if err != nil {
		return nil, err
	}
	if o.Trusted == nil {
		if latest == nil {
			rep.problem("workspace %s: no valid checkpoint to check against", o.WorkspaceID)
			return nil, nil
		}
		return []Checkpoint{*latest}, nil
	}
	t := *o.Trusted
	if t.WorkspaceID != o.WorkspaceID {
		return nil, fmt.Errorf("the trusted checkpoint is of workspace %s", t.WorkspaceID)
	}
	switch {
	case latest == nil:
	case latest.Size == t.Size && latest.Root != t.Root:
		rep.problem("fork: ClickHouse's checkpoint of size %d has another root than the one held outside", t.Size)
	case latest.Size < t.Size:
		rep.problem("rollback: ClickHouse's latest checkpoint (size %d) is smaller than the one held outside (size %d)", latest.Size, t.Size)
	case latest.Size > t.Size:
		// Both roots are recomputed from the same leaves: the trusted one
		// matching proves the later one extends it.
		return []Checkpoint{t, *latest}, nil
	}
	return []Checkpoint{t}, nil
}

// storedLatest returns ClickHouse's latest checkpoint when its signature,
// workspace and columns check, nil otherwise (a problem is reported).
func storedLatest(ctx context.Context, src Source, o OnlineOptions, rep *Report) (*Checkpoint, error) {
	stored, err := src.LatestCheckpoint(ctx, o.WorkspaceID)
	if errors.Is(err, store.ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cp, err := OpenCheckpoint([]byte(stored.Note), o.Known, o.Origin)
	switch {
	case err != nil:
		rep.problem("stored checkpoint of size %d: %v", stored.Size, err)
	case cp.WorkspaceID != o.WorkspaceID || cp.Size != stored.Size || cp.Root != stored.Root:
		rep.problem("stored checkpoint of size %d: its columns differ from its signed note (rewritten)", stored.Size)
	default:
		cp.Label = "ClickHouse's latest"
		return &cp, nil
	}
	return nil, nil
}

// walk recomputes a tree from its leaves' hashes.
type walk struct {
	ws     string
	byKey  map[rowKey]store.Leaf
	level0 map[int64]tlog.Hash // known leaf hashes, recomputed where a row exists
	known  []int64             // sorted indexes of level0
	stored map[int64]tlog.Hash // stored hashes read for expired parts
	need   []int64             // stored hashes a dry run found missing
	// gone are the leaves (below the size checked) whose event the store
	// no longer holds; hasLeaf the indexes with a leaf row.
	gone    []store.Leaf
	hasLeaf map[int64]bool
}

// checkRoot recomputes the root of the checkpoint's tree, compares it
// with the signed root and reports whether they match.
func (w *walk) checkRoot(hr tlog.HashReader, cp Checkpoint, rep *Report) bool {
	if cp.Size == 0 {
		return true
	}
	w.known = make([]int64, 0, len(w.level0))
	for i := range w.level0 {
		w.known = append(w.known, i)
	}
	slices.Sort(w.known)
	if w.stored == nil {
		w.stored = map[int64]tlog.Hash{}
	}
	w.need = nil
	w.node(0, cp.Size) // dry run: collect the stored hashes needed
	for len(w.need) > 0 {
		chunk := w.need[:min(len(w.need), 5000)]
		w.need = w.need[len(chunk):]
		hs, err := hr.ReadHashes(chunk)
		if err != nil {
			rep.problem("checkpoint %d: stored hashes of leaves without rows are missing: %v", cp.Size, err)
			return false
		}
		for k, i := range chunk {
			w.stored[i] = hs[k]
		}
	}
	root := w.node(0, cp.Size)
	if root != cp.Root {
		rep.problem("the log of workspace %s does not match checkpoint %d (%s, signed by %s): the tree recomputed from the stored rows has root %s, the checkpoint %s (rows and stored hashes rewritten)",
			w.ws, cp.Size, cp.Label, cp.KeyName, root, cp.Root)
		return false
	}
	return true
}

// node returns the RFC 6962 hash of leaves [lo, hi): from the known leaf
// hashes, and for a complete subtree of at most a tile without a known
// leaf (expired) from its stored hash. Larger subtrees are always
// recomputed from their tiles, so that every tile's hash is authenticated
// by the root (the tile notes are bound to it). In a dry run (stored hash
// not read yet) it records the index in w.need and returns a zero hash.
func (w *walk) node(lo, hi int64) tlog.Hash {
	n := hi - lo
	if level, ok := completeSubtree(lo, n); ok && level <= tilenote.Height && !w.anyKnown(lo, hi) {
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
