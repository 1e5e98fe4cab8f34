package migrations

// Signed tile notes of the integrity log (migration 8): per complete tile
// of 256 leaves, the event times of its leaves and the newest of them,
// each signed by the sealer, so that `verify` can prove that a leaf whose
// event is gone expired by retention (docs/integrity.md#provable-expiry).

import "time"

// Names of the tile notes' tables.
const (
	// TileTimesTable holds, per complete tile, the signed note of its
	// leaves' event times. Week partitions by the tile's newest event time
	// (as the events table's, WeekPartition), so that the retention job
	// drops a tile's times with the week of its newest event: once every
	// event of the tile expired, when only the newest is needed.
	TileTimesTable = "audit_log_tile_times"
	// TileNewestTable holds, per complete tile, its newest event time and
	// the signature lines of its tile-newest note, whose text a verifier
	// rebuilds from the row and the tile's hash: what proves the expiry of
	// a reduced tile, kept for the life of the log in about 0.3 bytes per
	// event.
	TileNewestTable = "audit_log_tile_newest"
)

// TileNote is a row of TileTimesTable or TileNewestTable: the note of
// tile Tile of WorkspaceID's log, whose newest (known) event time is
// Newest. In TileTimesTable, Note is the whole signed note; in
// TileNewestTable only its signature lines (schemas/tilenote).
type TileNote struct {
	WorkspaceID string
	Tile        uint64
	Newest      time.Time
	Note        string
}

// tileColumns are both tables' columns, the last named note.
func tileColumns(note string) []columnDef[TileNote] {
	return []columnDef[TileNote]{
		column("workspace_id", "String", func(n *TileNote) *string { return &n.WorkspaceID }),
		column("tile", "UInt64", func(n *TileNote) *uint64 { return &n.Tile }),
		column("newest", "DateTime('UTC')", func(n *TileNote) *time.Time { return &n.Newest }),
		column(note, "String", func(n *TileNote) *string { return &n.Note }),
	}
}

// TileTimes and TileNewest declare TileTimesTable and TileNewestTable.
var (
	TileTimes  = newTable(TileTimesTable, tileColumns("note")...)
	TileNewest = newTable(TileNewestTable, tileColumns("signature")...)
)

// TileTimesPartition is TileTimesTable's partition key: the week of the
// tile's newest event, named as the events table's weeks.
const TileTimesPartition = "toUInt32(toMonday(newest))"

// createTileNotes creates the tile notes' tables, ReplacingMergeTrees as
// the log's others (a note signed again after a crash is the same row but
// for its signature; readers take any valid one).
func createTileNotes(o Options, _ Version) []string {
	var out []string
	out = append(out, o.createTable(TileTimesTable, TileTimes.definition(), "ReplacingMergeTree()",
		"PARTITION BY "+TileTimesPartition+"\nORDER BY (workspace_id, tile)")...)
	out = append(out, o.createTable(TileNewestTable, TileNewest.definition(), "ReplacingMergeTree()",
		"ORDER BY (workspace_id, tile)")...)
	return out
}
