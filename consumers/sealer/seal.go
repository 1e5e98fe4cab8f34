package sealer

// Sealing a batch: the stored rows of the batch's records are read back,
// and each stored event without a leaf becomes the next leaf of its
// workspace's log, in the records' order.

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Store is what the sealer needs of ClickHouse (ClickHouseStore).
type Store interface {
	// Rows returns the stored rows of keys (unmerged copies collapsed);
	// a key that is not stored is absent.
	Rows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error)
	// Load returns a workspace's log as stored, with the keys of its
	// leaves whose event timestamp is at least seenFrom (at most maxSeen;
	// State.SeenFrom says from where they are complete), and the orphans
	// among its last recent leaf indexes.
	Load(ctx context.Context, ws string, seenFrom int64, maxSeen, recent int) (State, error)
	// HasLeaves returns which of a workspace's keys have a leaf.
	HasLeaves(ctx context.Context, ws string, keys []Key) (map[Key]bool, error)
	// Append stores the stored hashes, then the leaves. When it fails,
	// any part of them may be stored.
	Append(ctx context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error
	// SaveCheckpoint stores a signed checkpoint.
	SaveCheckpoint(ctx context.Context, cp migrations.Checkpoint) error
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
}

// seal gives every stored event among keys (in partition order) that has
// no leaf yet the next index of its workspace's log, and stores the new
// stored hashes, then the leaves. On error nothing it decided is kept in
// memory: the workspaces it touched are loaded again from ClickHouse on
// the next call, which replays the same keys.
func (s *sequencer) seal(ctx context.Context, keys []Key) (Sealed, error) {
	var out Sealed
	rows, err := s.store.Rows(ctx, keys)
	if err != nil {
		return out, fmt.Errorf("read stored rows: %w", err)
	}
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
	var hashes []migrations.StoredHash
	at := s.now().UTC().Truncate(time.Second)
	for _, k := range keys {
		row, ok := rows[k]
		if !ok {
			out.Skipped++
			continue
		}
		if !fresh[k] {
			out.Repeats++
			continue
		}
		delete(fresh, k) // a key repeated in the batch gets one leaf
		t := s.trees[k.WorkspaceID]
		h := leaf.Hash(&row)
		index, ok := t.orphans[h]
		if ok {
			delete(t.orphans, h)
			out.Reclaimed++
		} else {
			index = t.size
			added, err := t.appendLeaf(h)
			if err != nil {
				return out, fmt.Errorf("append to the log of %s: %w", k.WorkspaceID, err)
			}
			hashes = append(hashes, added...)
		}
		out.Leaves = append(out.Leaves, migrations.Leaf{WorkspaceID: k.WorkspaceID, Index: uint64(index),
			TimestampNs: k.TimestampNs, ID: k.ID, Hash: string(h[:]), SealedAt: at})
	}
	out.Hashes = len(hashes)
	if len(out.Leaves) == 0 {
		return out, nil
	}
	if err = s.store.Append(ctx, hashes, out.Leaves); err != nil {
		return out, fmt.Errorf("store the log: %w", err)
	}
	for _, l := range out.Leaves {
		s.trees[l.WorkspaceID].remember(leafKey{l.TimestampNs, l.ID}, s.maxSeen)
	}
	return out, nil
}

// fresh returns which stored keys have no leaf yet: those the workspace's
// set of known keys decides, and the older ones looked up in ClickHouse.
// It loads the workspaces seen for the first time.
func (s *sequencer) fresh(ctx context.Context, keys []Key, rows map[Key]migrations.Row, touched map[string]bool) (map[Key]bool, error) {
	fresh := map[Key]bool{}
	older := map[string][]Key{}
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			continue
		}
		touched[k.WorkspaceID] = true
		t, err := s.tree(ctx, k.WorkspaceID)
		if err != nil {
			return nil, err
		}
		if _, ok := t.seen[leafKey{k.TimestampNs, k.ID}]; ok {
			continue
		}
		if k.TimestampNs >= t.seenFrom {
			fresh[k] = true
			continue
		}
		older[k.WorkspaceID] = append(older[k.WorkspaceID], k)
	}
	for ws, ks := range older {
		has, err := s.store.HasLeaves(ctx, ws, ks)
		if err != nil {
			return nil, fmt.Errorf("look up leaves of %s: %w", ws, err)
		}
		for _, k := range ks {
			if !has[k] {
				fresh[k] = true
			}
		}
	}
	return fresh, nil
}

// tree returns a workspace's log, loading it when this sealer has not yet.
func (s *sequencer) tree(ctx context.Context, ws string) (*tree, error) {
	if t := s.trees[ws]; t != nil {
		return t, nil
	}
	st, err := s.store.Load(ctx, ws, s.now().Add(-s.lookback).UnixNano(), s.maxSeen, s.recent)
	if err != nil {
		return nil, fmt.Errorf("load the log of %s: %w", ws, err)
	}
	t := newTree(ws, st)
	if _, err := tlog.TreeHash(t.size, t); err != nil {
		return nil, fmt.Errorf("load the log of %s: %w", ws, err)
	}
	s.trees[ws] = t
	return t, nil
}

// forget drops the workspaces' logs from memory (their partition moved).
func (s *sequencer) forget(keep func(ws string) bool) {
	for ws := range s.trees {
		if !keep(ws) {
			delete(s.trees, ws)
		}
	}
}
