package sealer

// Late kept events: an event older than the deployment's window when it
// arrives (a backfill of a workspace whose policy keeps it longer, or
// holds it) is stored by the writer in the events table and in the
// long-term table (audit_events_kept), and the retention job may drop
// its week, and its leaves' day, as soon as they settled. So the sealer
// stores the leaf of such an event in the long-term leaves table too,
// before the leaves table, and looks such keys up in the long-term tables
// as well: their leaf may survive only there, and their row too. Only
// late keys are looked up there, in one query per round for all of them:
// current traffic reads nothing more (docs/retention.md).

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// KeptStore is what the sealer needs of the long-term tables
// (migrations.KeptTable, migrations.KeptLeavesTable).
type KeptStore interface {
	// KeptLeaves returns which keys' ids have a leaf in the long-term
	// leaves table (whatever that leaf's timestamp), in one query (or one
	// per lookupChunk keys).
	KeptLeaves(ctx context.Context, keys []Key) (map[Key]bool, error)
	// KeptRows returns the rows of keys that the long-term table holds as
	// kept by their policy (unmerged copies collapsed); restored rows
	// (from an archive) are left out: they were sealed before they
	// expired and get no new leaf. A key without such a row is absent.
	KeptRows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error)
	// AppendKept stores leaves in the long-term leaves table (equal rows
	// stored again collapse for readers and merges).
	AppendKept(ctx context.Context, leaves []migrations.Leaf) error
}

// lateMargin widens the window's edge for the clocks of the writer (which
// stores late events in the long-term table) and of the retention job
// (which drops their week), which may run ahead of the sealer's: a key
// up to an hour inside the window counts as late.
const lateMargin = time.Hour

// lateBefore returns the event time (ns) before which a key is late:
// older than the deployment's window less lateMargin (math.MinInt64, none,
// without a window).
func (s *sequencer) lateBefore() int64 {
	if s.window <= 0 {
		return math.MinInt64
	}
	return s.now().Add(-s.window + lateMargin).UnixNano()
}

// append stores a round's stored hashes and leaves (Store.Append). The
// late leaves go into the long-term leaves table too, after the stored
// hashes (an index a leaf row names is always in the log) and before the
// leaves table: once a late leaf is in the leaves table it is also in the
// long-term one, which no partition drop touches. A crash between the two
// leaves the leaf in the long-term table only, which the replay finds
// (hasLeaves): as after the retention job dropped its day.
func (s *sequencer) append(ctx context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error {
	before := s.lateBefore()
	var late []migrations.Leaf
	for _, l := range leaves {
		if l.TimestampNs < before {
			late = append(late, l)
		}
	}
	if len(late) == 0 {
		return s.store.Append(ctx, hashes, leaves)
	}
	if err := s.store.Append(ctx, hashes, nil); err != nil {
		return err
	}
	if err := s.store.AppendKept(ctx, late); err != nil {
		return fmt.Errorf("insert long-term leaves: %w", err)
	}
	return s.store.Append(ctx, nil, leaves)
}

// hasLeaves returns which keys (by workspace) have an id with a leaf: in
// the leaves table (Store.HasLeaves, per workspace), else, for late keys,
// in the long-term leaves table (one KeptLeaves call for all of them).
func (s *sequencer) hasLeaves(ctx context.Context, keys map[string][]Key) (map[Key]bool, error) {
	out := map[Key]bool{}
	before := s.lateBefore()
	var late []Key
	for ws, ks := range keys {
		has, err := s.store.HasLeaves(ctx, ws, ks)
		if err != nil {
			return nil, fmt.Errorf("look up leaves of %s: %w", ws, err)
		}
		for _, k := range ks {
			switch {
			case has[k]:
				out[k] = true
			case k.TimestampNs < before:
				late = append(late, k)
			}
		}
	}
	if len(late) == 0 {
		return out, nil
	}
	kept, err := s.store.KeptLeaves(ctx, late)
	if err != nil {
		return nil, fmt.Errorf("look up long-term leaves: %w", err)
	}
	for _, k := range late {
		if kept[k] {
			out[k] = true
		}
	}
	return out, nil
}

// storedRows reads keys' stored rows back: from the events table
// (Store.Rows), and the late keys it lacks (their week dropped after it
// was copied) from the long-term table (one KeptRows call).
func (s *sequencer) storedRows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error) {
	out, err := s.store.Rows(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read stored rows: %w", err)
	}
	before := s.lateBefore()
	var late []Key
	for _, k := range keys {
		if _, ok := out[k]; !ok && k.TimestampNs < before {
			late = append(late, k)
		}
	}
	if len(late) == 0 {
		return out, nil
	}
	kept, err := s.store.KeptRows(ctx, late)
	if err != nil {
		return nil, fmt.Errorf("read long-term rows: %w", err)
	}
	for _, k := range late {
		if r, ok := kept[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}
