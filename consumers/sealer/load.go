package sealer

// Loading a workspace's log at takeover.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Load implements Store. The size comes from the stored hashes, which are
// inserted before the leaves and never deleted at the right edge (see
// docs/integrity.md).
func (s *ClickHouseStore) Load(ctx context.Context, ws string, seenFrom int64, maxSeen, recent int) (State, error) {
	st := State{SeenFrom: seenFrom}
	var (
		n   uint64
		top uint64
	)
	if err := s.conn.QueryRow(ctx, "SELECT count(), max(hash_index) FROM "+s.table(migrations.HashesTable)+" WHERE workspace_id = ?", ws).Scan(&n, &top); err != nil {
		return st, fmt.Errorf("read the log's size: %w", err)
	}
	if n > 0 {
		var err error
		if st.Size, err = SizeOf(int64(top) + 1); err != nil {
			return st, err
		}
	}
	if err := s.loadEdge(ctx, ws, &st); err != nil {
		return st, err
	}
	if err := s.loadSeen(ctx, ws, maxSeen, &st); err != nil {
		return st, err
	}
	if err := s.loadOrphans(ctx, ws, max(st.Size-int64(recent), 0), &st); err != nil {
		return st, err
	}
	var signed uint64
	err := s.conn.QueryRow(ctx, "SELECT size, signed_at, note FROM "+s.table(migrations.CheckpointsTable)+
		" WHERE workspace_id = ? ORDER BY size DESC, signed_at DESC LIMIT 1", ws).Scan(&signed, &st.SignedAt, &st.Note)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	st.Signed = int64(signed)
	return st, nil
}

func (s *ClickHouseStore) loadEdge(ctx context.Context, ws string, st *State) error {
	idx := edgeIndexes(st.Size)
	st.Edge = map[int64]tlog.Hash{}
	if len(idx) == 0 {
		return nil
	}
	got, err := s.hashes(ctx, ws, "hash_index IN ("+joinInts(idx)+")")
	if err != nil {
		return fmt.Errorf("read the log's right edge: %w", err)
	}
	for _, x := range idx {
		h, ok := got[x]
		if !ok {
			return fmt.Errorf("read the log's right edge: stored hash %d of size %d is missing", x, st.Size)
		}
		st.Edge[x] = h
	}
	return nil
}

// loadSeen reads the keys of the leaves with an event timestamp of at
// least st.SeenFrom, the latest maxSeen of them; when there are more, it
// raises SeenFrom past the oldest timestamp it could not read in full.
func (s *ClickHouseStore) loadSeen(ctx context.Context, ws string, maxSeen int, st *State) error {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT timestamp_ns, id FROM "+s.table(migrations.LeavesTable)+
		" WHERE workspace_id = ? AND timestamp_ns >= ? ORDER BY timestamp_ns DESC LIMIT ?", ws, st.SeenFrom, maxSeen+1)
	if err != nil {
		return fmt.Errorf("read the log's recent leaves: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		k := Key{WorkspaceID: ws}
		if err := rows.Scan(&k.TimestampNs, &k.ID); err != nil {
			return fmt.Errorf("read the log's recent leaves: %w", err)
		}
		st.Seen = append(st.Seen, k)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the log's recent leaves: %w", err)
	}
	if len(st.Seen) > maxSeen {
		oldest := st.Seen[len(st.Seen)-1].TimestampNs
		st.SeenFrom = oldest + 1
		for len(st.Seen) > 0 && st.Seen[len(st.Seen)-1].TimestampNs == oldest {
			st.Seen = st.Seen[:len(st.Seen)-1]
		}
	}
	return nil
}

// loadOrphans finds the indexes from `from` on with stored hashes but no
// leaf row.
func (s *ClickHouseStore) loadOrphans(ctx context.Context, ws string, from int64, st *State) error {
	if from >= st.Size {
		return nil
	}
	levelZero, err := s.hashes(ctx, ws, "hash_index >= ? AND level = 0", tlog.StoredHashIndex(0, from))
	if err != nil {
		return fmt.Errorf("read the log's last leaf hashes: %w", err)
	}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT leaf_index FROM "+s.table(migrations.LeavesTable)+
		" WHERE workspace_id = ? AND leaf_index >= ?", ws, uint64(from))
	if err != nil {
		return fmt.Errorf("read the log's last leaves: %w", err)
	}
	defer rows.Close()
	withLeaf := map[int64]bool{}
	for rows.Next() {
		var i uint64
		if err := rows.Scan(&i); err != nil {
			return fmt.Errorf("read the log's last leaves: %w", err)
		}
		withLeaf[int64(i)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the log's last leaves: %w", err)
	}
	st.Orphans = Orphans(from, st.Size, levelZero, withLeaf)
	return nil
}
