package store

// The integrity log's reader: stored hashes, leaves and signed checkpoints
// of one workspace's Merkle log (tables of migration 6). Unmerged equal
// copies of a row are collapsed (LIMIT 1 BY the key).

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
	"golang.org/x/mod/sumdb/tlog"
)

// Leaf is one leaf of a workspace's log: its index and hash, and the key
// of the stored event it covers.
type Leaf struct {
	WorkspaceID string
	Index       int64
	TimestampNs int64
	ID          string
	Hash        tlog.Hash
}

// Checkpoint is a signed tree head of a workspace's log.
type Checkpoint struct {
	WorkspaceID string
	Size        int64
	Root        tlog.Hash
	// Note is the full signed note text.
	Note     string
	KeyName  string
	SignedAt time.Time
}

// Errors of the log reader.
var (
	ErrNoCheckpoint = errors.New("no checkpoint")
	ErrNoLeaf       = errors.New("no leaf")
	ErrHashMissing  = errors.New("stored hash missing")
)

// Log reads the integrity log. It is safe for concurrent use.
type Log struct {
	conn Conn
	db   string
	// hasKept is set once the long-term leaves table exists (migration
	// 7; until then, in a rolling deploy, only the leaves table is read).
	hasKept atomic.Bool
}

// NewLog returns a reader of the log tables in database.
func NewLog(conn Conn, database string) *Log { return &Log{conn: conn, db: database} }

// LatestCheckpoint returns the workspace's largest checkpoint, or
// ErrNoCheckpoint.
func (l *Log) LatestCheckpoint(ctx context.Context, workspaceID string) (Checkpoint, error) {
	cps, err := l.checkpoints(ctx, "workspace_id = ?\nORDER BY size DESC\nLIMIT 1", workspaceID)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cps) == 0 {
		return Checkpoint{}, ErrNoCheckpoint
	}
	return cps[0], nil
}

// CheckpointAt returns the workspace's checkpoint of the given size, or
// ErrNoCheckpoint.
func (l *Log) CheckpointAt(ctx context.Context, workspaceID string, size int64) (Checkpoint, error) {
	cps, err := l.checkpoints(ctx, "workspace_id = ? AND size = ?\nLIMIT 1", workspaceID, uint64(size))
	if err != nil {
		return Checkpoint{}, err
	}
	if len(cps) == 0 {
		return Checkpoint{}, ErrNoCheckpoint
	}
	return cps[0], nil
}

// Checkpoints returns every checkpoint of the workspace, smallest first.
func (l *Log) Checkpoints(ctx context.Context, workspaceID string) ([]Checkpoint, error) {
	return l.checkpoints(ctx, "workspace_id = ?\nORDER BY size", workspaceID)
}

func (l *Log) checkpoints(ctx context.Context, where string, args ...any) ([]Checkpoint, error) {
	// LIMIT 1 BY collapses unmerged copies; ORDER/LIMIT in where apply after.
	sql := fmt.Sprintf("SELECT workspace_id, size, hex(root), note, key_name, signed_at FROM (\n"+
		"SELECT workspace_id, size, root, note, key_name, signed_at FROM %s.%s WHERE workspace_id = ?\nLIMIT 1 BY workspace_id, size)\nWHERE %s",
		l.db, migrations.CheckpointsTable, where)
	var out []Checkpoint
	err := scanRows(ctx, l.conn, sql, append([]any{args[0]}, args...), func(scan func(...any) error) error {
		var c Checkpoint
		var size uint64
		var root string
		if err := scan(&c.WorkspaceID, &size, &root, &c.Note, &c.KeyName, &c.SignedAt); err != nil {
			return err
		}
		c.Size = int64(size)
		var err error
		if c.Root, err = unhex(root); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// HashReader returns a tlog.HashReader over the workspace's stored
// hashes; it reads with ctx, and reports ErrHashMissing for an index that
// is not stored.
func (l *Log) HashReader(ctx context.Context, workspaceID string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return l.readHashes(ctx, workspaceID, indexes)
	})
}

func (l *Log) readHashes(ctx context.Context, workspaceID string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	args := []any{workspaceID}
	for _, i := range indexes {
		args = append(args, uint64(i))
	}
	sql := fmt.Sprintf("SELECT hash_index, hex(any(hash)) FROM %s.%s\nWHERE workspace_id = ? AND hash_index IN (%s)\nGROUP BY hash_index",
		l.db, migrations.HashesTable, placeholders(len(indexes)))
	found := make(map[int64]tlog.Hash, len(indexes))
	err := scanRows(ctx, l.conn, sql, args, func(scan func(...any) error) error {
		var i uint64
		var h string
		if err := scan(&i, &h); err != nil {
			return err
		}
		hash, err := unhex(h)
		if err != nil {
			return err
		}
		found[int64(i)] = hash
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stored hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for k, i := range indexes {
		h, ok := found[i]
		if !ok {
			return nil, fmt.Errorf("%w: index %d of workspace %s", ErrHashMissing, i, workspaceID)
		}
		out[k] = h
	}
	return out, nil
}

// LeafByID returns the leaf of the workspace's event id, or ErrNoLeaf.
func (l *Log) LeafByID(ctx context.Context, workspaceID, id string) (Leaf, error) {
	return l.oneLeaf(ctx, "id = ?", workspaceID, id)
}

// LeafByKey returns the leaf of the workspace's event (timestamp, id), or
// ErrNoLeaf; the timestamp prunes the leaves' day partitions.
func (l *Log) LeafByKey(ctx context.Context, workspaceID string, k Key) (Leaf, error) {
	var found []Leaf
	err := l.leaves(ctx, workspaceID, "timestamp_ns = ? AND id = ?", "\nORDER BY leaf_index\nLIMIT 1 BY workspace_id, leaf_index\nLIMIT 1",
		[]any{k.TimestampNs, k.ID}, func(lf Leaf) error {
			found = append(found, lf)
			return nil
		})
	if err != nil {
		return Leaf{}, err
	}
	if len(found) == 0 {
		return Leaf{}, ErrNoLeaf
	}
	return found[0], nil
}

// LeafAt returns the workspace's leaf of the given index, or ErrNoLeaf
// (never sealed, or removed by retention).
func (l *Log) LeafAt(ctx context.Context, workspaceID string, index int64) (Leaf, error) {
	return l.oneLeaf(ctx, "leaf_index = ?", workspaceID, uint64(index))
}

func (l *Log) oneLeaf(ctx context.Context, cond, workspaceID string, v any) (Leaf, error) {
	var found []Leaf
	err := l.leaves(ctx, workspaceID, cond, "\nORDER BY leaf_index\nLIMIT 1 BY workspace_id, leaf_index\nLIMIT 1", []any{v}, func(lf Leaf) error {
		found = append(found, lf)
		return nil
	})
	if err != nil {
		return Leaf{}, err
	}
	if len(found) == 0 {
		return Leaf{}, ErrNoLeaf
	}
	return found[0], nil
}

// Leaves calls fn for each stored leaf with an index in [from, to), in
// index order, each once.
func (l *Log) Leaves(ctx context.Context, workspaceID string, from, to int64, fn func(Leaf) error) error {
	return l.leaves(ctx, workspaceID, "leaf_index >= ? AND leaf_index < ?", "\nORDER BY leaf_index\nLIMIT 1 BY workspace_id, leaf_index", []any{uint64(from), uint64(to)}, fn)
}

// leaves reads leaves from the leaves table and the long-term leaves
// table (of events kept past the deployment's window): cond is the WHERE
// condition, tail the ORDER BY and LIMIT BY clauses over both (which
// collapse copies of a leaf).
func (l *Log) leaves(ctx context.Context, workspaceID, cond, tail string, args []any, fn func(Leaf) error) error {
	tables := []string{migrations.LeavesTable}
	if !l.hasKept.Load() {
		var n uint64
		err := scanRows(ctx, l.conn, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", []any{l.db, migrations.KeptLeavesTable},
			func(scan func(...any) error) error { return scan(&n) })
		if err != nil {
			return fmt.Errorf("look up the long-term leaves: %w", err)
		}
		l.hasKept.Store(n > 0)
	}
	if l.hasKept.Load() {
		tables = append(tables, migrations.KeptLeavesTable)
	}
	var branches []string
	var all []any
	for _, table := range tables {
		branches = append(branches, fmt.Sprintf("SELECT workspace_id, leaf_index, timestamp_ns, id, leaf_hash FROM %s.%s\nPREWHERE workspace_id = ? WHERE %s", l.db, table, cond))
		all = append(append(all, workspaceID), args...)
	}
	sql := "SELECT workspace_id, leaf_index, timestamp_ns, id, hex(leaf_hash) FROM (\n" + strings.Join(branches, "\nUNION ALL\n") + ")" + tail
	err := scanRows(ctx, l.conn, sql, all, func(scan func(...any) error) error {
		var lf Leaf
		var index uint64
		var h string
		if err := scan(&lf.WorkspaceID, &index, &lf.TimestampNs, &lf.ID, &h); err != nil {
			return err
		}
		lf.Index = int64(index)
		var err error
		if lf.Hash, err = unhex(h); err != nil {
			return err
		}
		return fn(lf)
	})
	if err != nil {
		return fmt.Errorf("read leaves: %w", err)
	}
	return nil
}

// scanRows runs sql and calls fn with a scanner for each row.
func scanRows(ctx context.Context, conn Conn, sql string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Key names a stored event of a workspace.
type Key struct {
	TimestampNs int64
	ID          string
}

// LeafIndexes returns the leaf index of each of the workspace's events
// named by keys that is a leaf of a tree of the given size; events without
// such a leaf are absent from the map.
func (l *Log) LeafIndexes(ctx context.Context, workspaceID string, keys []Key, size int64) (map[Key]int64, error) {
	out := make(map[Key]int64, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	lo, hi := keys[0].TimestampNs, keys[0].TimestampNs
	ids := make([]any, 0, len(keys))
	for _, k := range keys {
		lo, hi = min(lo, k.TimestampNs), max(hi, k.TimestampNs)
		ids = append(ids, k.ID)
	}
	want := make(map[Key]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	cond := fmt.Sprintf("timestamp_ns >= ? AND timestamp_ns <= ? AND leaf_index < ? AND id IN (%s)", placeholders(len(ids)))
	args := append([]any{lo, hi, uint64(size)}, ids...)
	err := l.leaves(ctx, workspaceID, cond, "\nLIMIT 1 BY workspace_id, leaf_index", args, func(lf Leaf) error {
		if k := (Key{lf.TimestampNs, lf.ID}); want[k] {
			out[k] = lf.Index
		}
		return nil
	})
	return out, err
}

// unhex decodes a hash read as hex() (the queries read hashes as hex, so
// that they travel as text).
func unhex(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if len(s) != 2*tlog.HashSize {
		return h, fmt.Errorf("stored hash %q: not %d bytes", s, tlog.HashSize)
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err
}
