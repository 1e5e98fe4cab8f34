package sealer

// Sealing a batch: what the writer stored of the batch's records is read
// (resolve), and each stored event without a leaf becomes the next leaf of
// its workspace's log, in the records' order.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Store is what the sealer needs of ClickHouse (ClickHouseStore).
type Store interface {
	// Offsets returns the offsets record's row of each offset of spans
	// that has one (of several rows of an offset: a stored one if any,
	// the last recorded).
	Offsets(ctx context.Context, spans []Span) (map[At]migrations.StoredOffset, error)
	// Rows returns the stored rows of keys (unmerged copies collapsed);
	// a key that is not stored is absent.
	Rows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error)
	// Load returns workspaces' logs as stored, each with the keys of its
	// leaves whose event timestamp is at least seenFrom (at most maxSeen;
	// State.SeenFrom says from where they are complete), and the orphans
	// among its last recent leaf indexes. A workspace without a log has
	// the zero State (SeenFrom set).
	Load(ctx context.Context, wss []string, seenFrom int64, maxSeen, recent int) (map[string]State, error)
	// HasLeaves returns which of a workspace's keys have an id with a
	// leaf (whatever that leaf's timestamp).
	HasLeaves(ctx context.Context, ws string, keys []Key) (map[Key]bool, error)
	// Append stores the stored hashes, then the leaves. When it fails,
	// any part of them may be stored.
	Append(ctx context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error
	// Sizes returns, for each workspace, the size given when its stored
	// log has that size, else -1 (the fence).
	Sizes(ctx context.Context, near map[string]int64) (map[string]int64, error)
	// ReadHashes reads a workspace's stored hashes.
	ReadHashes(ctx context.Context, ws string) tlog.HashReaderFunc
	// SaveCheckpoints stores signed checkpoints.
	SaveCheckpoints(ctx context.Context, cps []migrations.Checkpoint) error
	// LeafTimes returns the event times (Unix seconds) of a workspace's
	// leaves at indexes that it can authenticate: the leaf row's hash is
	// the stored leaf hash, and the stored event the row names hashes to
	// it. Others are absent.
	LeafTimes(ctx context.Context, ws string, indexes []int64) (map[int64]int64, error)
	// SaveTileNotes stores signed tile notes: the times notes, then the
	// newest notes (which count the noted tiles at takeover).
	SaveTileNotes(ctx context.Context, times, newest []migrations.TileNote) error
	// KeptStore reads and writes the long-term tables (kept.go).
	KeptStore
}

// sequencer assigns leaf indexes. It is owned by one goroutine.
type sequencer struct {
	store Store
	now   func() time.Time
	trees map[string]*tree
	// maxSeen bounds each workspace's set of known leaf keys; lookback is
	// how far back in event time a takeover loads them; recent is how many
	// of the last leaf indexes are searched for orphans.
	maxSeen  int
	lookback time.Duration
	recent   int
	// anchor, when set, checks each loaded log against its latest signed
	// checkpoint.
	anchor *anchor
	// sampler, when set, picks the new leaves whose stored rows are read
	// back and compared (sample.go).
	sampler *sampler
	// window is the deployment's retention window: the keys older than it
	// are late (kept.go); 0 makes none late.
	window time.Duration
}

// Sealed is what one seal call appended.
type Sealed struct {
	Leaves []migrations.Leaf
	Hashes int
	// Skipped counts records whose event is not stored (dead-lettered,
	// skipped by the writer, or a resend with another timestamp), Repeats
	// stored events that already had a leaf.
	Skipped, Repeats int
	// Reclaimed counts leaves that took back the index a crash left with
	// stored hashes but no leaf row.
	Reclaimed int
	// Mismatches are stored events read back from the events table that
	// differ from the record they were read for (other than in
	// received_at): they get no leaf.
	Mismatches []Key
	// ReadBack counts, by reason, the records whose stored row was read
	// back from the events table by key.
	ReadBack map[string]int
	// OffsetMismatches are records whose offsets row differs from them
	// (another key or received_at_ns): the writer writes neither, so the
	// offsets record was changed. Their rows were read back.
	OffsetMismatches []Key
	// Sample are a random few of the new leaves, whose stored rows are
	// read back and compared off the sealer's loop (sample.go).
	Sample SampleCheck
}

// Item is a record to seal: the key of its event, its place (looked up in
// the offsets record; a zero At is read back by key) and, when known, the
// row the writer stores from the record (sealed when the offsets record
// says the writer stored it; compared with a row read back).
type Item struct {
	Key    Key
	At     At
	Record *migrations.Row
}

// ErrFenced reports that a workspace's stored log is not the one this
// sealer holds in memory: another sealer appended to it (two owners after
// a partition move) or it was changed. Nothing is stored; the workspace is
// loaded again.
var ErrFenced = errors.New("the stored log is not the one this sealer holds")

// seal gives every stored event among items (in partition order) that has
// no leaf yet the next index of its workspace's log, and stores the new
// stored hashes, then the leaves. On error nothing it decided is kept in
// memory: the workspaces it touched are loaded again from ClickHouse on
// the next call, which replays the same items.
func (s *sequencer) seal(ctx context.Context, items []Item) (out Sealed, err error) {
	keys := make([]Key, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	res, err := s.resolve(ctx, items)
	if err != nil {
		return out, err
	}
	out.ReadBack, out.OffsetMismatches = res.fallback, res.tampered
	rows := res.rows
	touched := map[string]bool{}
	defer func() {
		if err != nil {
			for ws := range touched {
				delete(s.trees, ws)
			}
		}
	}()
	fresh, err := s.fresh(ctx, keys, rows, touched)
	if err != nil {
		return out, err
	}
	sizes := map[string]int64{}
	for ws := range touched {
		sizes[ws] = s.trees[ws].size
		s.trees[ws].used = s.now()
	}
	hashes, err := s.assign(items, res, fresh, &out)
	if err != nil {
		return out, err
	}
	out.Hashes = len(hashes)
	if len(out.Leaves) == 0 {
		return out, nil
	}
	if err = s.fence(ctx, sizes); err != nil {
		return out, err
	}
	if err = s.append(ctx, hashes, out.Leaves); err != nil {
		return out, fmt.Errorf("store the log: %w", err)
	}
	for _, l := range out.Leaves {
		s.trees[l.WorkspaceID].remember(leafKey{l.TimestampNs, l.ID}, s.maxSeen)
	}
	out.Sample = s.sample(out.Leaves, res)
	return out, nil
}

// assign decides the leaves of the fresh stored events in items' order and
// returns the stored hashes they add.
func (s *sequencer) assign(items []Item, res resolved, fresh map[Key]bool, out *Sealed) ([]migrations.StoredHash, error) {
	// A leaf adds 2 stored hashes on average (one per level it completes).
	hashes := make([]migrations.StoredHash, 0, 2*len(fresh)+64)
	out.Leaves = make([]migrations.Leaf, 0, len(fresh))
	at := s.now().UTC().Truncate(time.Second)
	for i, it := range items {
		k := it.Key
		row, ok := res.rows[k]
		switch {
		case !ok || res.notStored[i]:
			out.Skipped++
			continue
		case !fresh[k]:
			out.Repeats++
			continue
		}
		delete(fresh, k) // a key repeated in the batch gets one leaf
		t := s.trees[k.WorkspaceID]
		if _, dup := t.seenIDs[k.ID]; dup { // its id got one earlier in the batch
			out.Repeats++
			continue
		}
		h := leaf.Hash(row)
		if it.Record != nil && res.readBack[k] && !sameEvent(it.Record, row, h) {
			out.Mismatches = append(out.Mismatches, k)
			continue
		}
		index, ok := t.orphans[h]
		if ok {
			delete(t.orphans, h)
			out.Reclaimed++
		} else {
			index = t.size
			var err error
			if hashes, err = t.appendLeaf(h, hashes); err != nil {
				return nil, fmt.Errorf("append to the log of %s: %w", k.WorkspaceID, err)
			}
		}
		t.seenIDs[k.ID] = struct{}{}
		t.noteTime(index, k.TimestampNs)
		out.Leaves = append(out.Leaves, migrations.Leaf{WorkspaceID: k.WorkspaceID, Index: uint64(index),
			TimestampNs: k.TimestampNs, ID: k.ID, Hash: string(h[:]), SealedAt: at})
	}
	return hashes, nil
}

// sameEvent reports whether the stored row is the event of the record
// (received_at aside: an identical resend may have been the copy stored).
func sameEvent(record, stored *migrations.Row, storedHash tlog.Hash) bool {
	r := *record
	r.ReceivedAt, r.ReceivedAtNs = stored.ReceivedAt, stored.ReceivedAtNs
	return leaf.Hash(&r) == storedHash
}

// fence checks that each workspace's stored log still has the size this
// sealer held before the batch (sizes).
func (s *sequencer) fence(ctx context.Context, sizes map[string]int64) error {
	stored, err := s.store.Sizes(ctx, sizes)
	if err != nil {
		return fmt.Errorf("read the logs' sizes: %w", err)
	}
	for ws, n := range sizes {
		if stored[ws] != n {
			return fmt.Errorf("%w: %s has %d leaves stored, %d in memory", ErrFenced, ws, stored[ws], n)
		}
	}
	return nil
}

// fresh returns which stored keys have no leaf yet: those the workspace's
// set of known keys decides, and the older ones looked up in ClickHouse.
// It loads the workspaces seen for the first time.
func (s *sequencer) fresh(ctx context.Context, keys []Key, rows map[Key]*migrations.Row, touched map[string]bool) (map[Key]bool, error) {
	stored := make([]Key, 0, len(keys))
	for _, k := range keys {
		if _, ok := rows[k]; ok {
			touched[k.WorkspaceID] = true
			stored = append(stored, k)
		}
	}
	if err := s.load(ctx, touched); err != nil {
		return nil, err
	}
	fresh := make(map[Key]bool, len(stored))
	older := map[string][]Key{}
	for _, k := range stored {
		t := s.trees[k.WorkspaceID]
		if _, ok := t.seenIDs[k.ID]; ok {
			continue
		}
		if k.TimestampNs >= t.seenFrom {
			fresh[k] = true
			continue
		}
		older[k.WorkspaceID] = append(older[k.WorkspaceID], k)
	}
	has, err := s.hasLeaves(ctx, older)
	if err != nil {
		return nil, err
	}
	for _, ks := range older {
		for _, k := range ks {
			if !has[k] {
				fresh[k] = true
			}
		}
	}
	return fresh, nil
}

// load loads the logs of the workspaces this sealer has not loaded yet.
func (s *sequencer) load(ctx context.Context, wss map[string]bool) error {
	var missing []string
	for ws := range wss {
		if s.trees[ws] == nil {
			missing = append(missing, ws)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	states, err := s.store.Load(ctx, missing, s.now().Add(-s.lookback).UnixNano(), s.maxSeen, s.recent)
	if err != nil {
		return fmt.Errorf("load logs: %w", err)
	}
	for _, ws := range missing {
		st := states[ws]
		t := newTree(ws, st)
		if _, err := tlog.TreeHash(t.size, t); err != nil {
			return fmt.Errorf("load the log of %s: %w", ws, err)
		}
		if s.anchor != nil {
			signed, err := s.anchor.check(ctx, s.store, ws, st, t)
			if err != nil {
				return err
			}
			t.signed = max(t.signed, signed)
		}
		s.trees[ws] = t
	}
	return nil
}

// evictIdle drops the logs no batch touched for idle and whose every leaf
// is in a signed checkpoint (a log with unsigned leaves stays until it is
// signed): they are loaded again when their workspace sends again. It
// bounds the memory of many workspaces that sent once.
func (s *sequencer) evictIdle(idle time.Duration) int {
	n := 0
	for ws, t := range s.trees {
		if t.size == t.signed && s.now().Sub(t.used) >= idle {
			delete(s.trees, ws)
			n++
		}
	}
	return n
}

// forget drops the workspaces' logs from memory (their partition moved).
func (s *sequencer) forget(keep func(ws string) bool) {
	for ws := range s.trees {
		if !keep(ws) {
			delete(s.trees, ws)
		}
	}
}
