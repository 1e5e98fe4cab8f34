package store

// The integrity log's signed tile notes (migration 8, schemas/tilenote):
// what `verify` proves expiry with.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// TileNotes are a workspace's stored tile notes by tile index, every
// distinct stored version of each (an attacker's extra row is one more,
// which fails to verify; the sealer's own copies are equal).
type TileNotes struct {
	// Times are the signed tile-times notes.
	Times map[int64][]string
	// Newest are the tile-newest notes as stored: the newest time and the
	// signature lines, without the text (rebuilt with the tile's hash).
	Newest map[int64][]NewestNote
}

// NewestNote is a stored tile-newest note.
type NewestNote struct {
	Newest    int64 // Unix seconds
	Signature string
}

// TileNotes returns the workspace's stored tile notes.
func (l *Log) TileNotes(ctx context.Context, workspaceID string) (TileNotes, error) {
	out := TileNotes{Times: map[int64][]string{}, Newest: map[int64][]NewestNote{}}
	sql := fmt.Sprintf("SELECT tile, note FROM %s.%s WHERE workspace_id = ? GROUP BY tile, note", l.db, migrations.TileTimesTable)
	err := scanRows(ctx, l.conn, sql, []any{workspaceID}, func(scan func(...any) error) error {
		var (
			tile uint64
			text string
		)
		if err := scan(&tile, &text); err != nil {
			return err
		}
		out.Times[int64(tile)] = append(out.Times[int64(tile)], text)
		return nil
	})
	if err != nil {
		return TileNotes{}, fmt.Errorf("read %s: %w", migrations.TileTimesTable, err)
	}
	sql = fmt.Sprintf("SELECT tile, toUInt32(newest), signature FROM %s.%s WHERE workspace_id = ? GROUP BY tile, newest, signature",
		l.db, migrations.TileNewestTable)
	err = scanRows(ctx, l.conn, sql, []any{workspaceID}, func(scan func(...any) error) error {
		var (
			tile   uint64
			newest uint32
			sig    string
		)
		if err := scan(&tile, &newest, &sig); err != nil {
			return err
		}
		out.Newest[int64(tile)] = append(out.Newest[int64(tile)], NewestNote{Newest: int64(newest), Signature: sig})
		return nil
	})
	if err != nil {
		return TileNotes{}, fmt.Errorf("read %s: %w", migrations.TileNewestTable, err)
	}
	return out, nil
}
