package sealer

// The tile notes in ClickHouse: what the sealer reads at takeover (how
// many tiles of a log are noted), the authenticated event times of leaves
// it no longer holds in memory, and the notes it stores.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// loadNoted sets each log's count of noted tiles: one past the highest
// tile with a newest note. A log without any starts at its current
// complete tiles: tiles completed before its first note (a log sealed
// before notes existed) are not noted.
func (s *ClickHouseStore) loadNoted(ctx context.Context, st map[string]*State, wss []string, _, _ int) error {
	noted := map[string]int64{}
	err := s.eachMax(ctx, "the noted tiles", migrations.TileNewestTable, "tile", wss, func(ws string, top uint64) error {
		noted[ws] = int64(top) + 1
		return nil
	})
	if err != nil {
		return err
	}
	for _, ws := range wss {
		n, ok := noted[ws]
		if !ok {
			n = st[ws].Size >> tilenote.Height
		}
		st[ws].Noted = n
	}
	return nil
}

// LeafTimes implements Store: a leaf's time counts only when its leaf
// row's hash is the stored leaf hash at its index and the stored event the
// row names hashes to it, so a rewritten leaf row or event gives no time.
func (s *ClickHouseStore) LeafTimes(ctx context.Context, ws string, indexes []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(indexes) == 0 {
		return out, nil
	}
	byIndex := map[int64]migrations.Leaf{}
	err := s.each(ctx, "leaf rows", "SELECT leaf_index, timestamp_ns, id, any(leaf_hash) FROM "+s.table(migrations.LeavesTable)+
		" WHERE workspace_id = ? AND leaf_index IN ("+joinInts(indexes)+") GROUP BY leaf_index, timestamp_ns, id", []any{ws},
		func(scan func(...any) error) error {
			var l migrations.Leaf
			if err := scan(&l.Index, &l.TimestampNs, &l.ID, &l.Hash); err != nil {
				return err
			}
			if _, dup := byIndex[int64(l.Index)]; dup {
				l.Hash = "" // two rows name the index: neither is trusted
			}
			byIndex[int64(l.Index)] = l
			return nil
		})
	if err != nil {
		return nil, err
	}
	level0 := make([]int64, 0, len(byIndex))
	keys := make([]Key, 0, len(byIndex))
	for i, l := range byIndex {
		level0 = append(level0, storedLeaf(i))
		keys = append(keys, Key{WorkspaceID: ws, TimestampNs: l.TimestampNs, ID: l.ID})
	}
	stored, err := s.hashes(ctx, ws, "hash_index IN ("+joinInts(level0)+")")
	if err != nil {
		return nil, fmt.Errorf("read leaf hashes: %w", err)
	}
	rows, err := s.Rows(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, l := range byIndex {
		h, ok := stored[storedLeaf(i)]
		row, found := rows[Key{WorkspaceID: ws, TimestampNs: l.TimestampNs, ID: l.ID}]
		if ok && found && string(h[:]) == l.Hash && leaf.Hash(&row) == h {
			out[i] = l.TimestampNs / 1e9
		}
	}
	return out, nil
}

// SaveTileNotes implements Store: the times notes, then the newest notes,
// which say at takeover how far a log is noted.
func (s *ClickHouseStore) SaveTileNotes(ctx context.Context, times, newest []migrations.TileNote) error {
	ctx = context.WithoutCancel(ctx)
	if err := insert(ctx, s.conn, s.db, migrations.TileTimes, times); err != nil {
		return fmt.Errorf("insert tile times: %w", err)
	}
	if err := insert(ctx, s.conn, s.db, migrations.TileNewest, newest); err != nil {
		return fmt.Errorf("insert tile newest times: %w", err)
	}
	return nil
}
