package sealer_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	readstore "github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestTheLogsQueriesOnCurrentClickHouse runs the sealer store's reads and
// writes and the retention's reduction of the log on current ClickHouse
// (26.9, in process through chdb). chdbtest sends SQL text, so the stored
// "hashes" here are printable 32-byte strings, and Rows names its keys in
// the query text instead of sending them as external data: the queries are
// what is tested; the hashing and the external data are on 18.16
// (sealer_integration_test.go).
func TestTheLogsQueriesOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	srv := chdbtest.Start(t)
	ctx := context.Background()
	const db = "audittrail"
	_, err := migrations.Apply(ctx, srv, migrations.Options{Database: db, RetentionDays: 30})
	require.NoError(t, err)
	// The events table's TTL would remove the old rows at a merge of the
	// server's choosing; with merges stopped only the retention job does.
	srv.StopMerges(t, db, migrations.Table)
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := now.Add(-40 * 24 * time.Hour)
	var keys []sealer.Key
	var evs []event.Event
	for i, at := range []time.Time{old, old.Add(time.Second), now} {
		e := event.Event{ID: "id" + string(rune('a'+i)), WorkspaceID: "ws", Event: "Source Created", Category: "Sources", Timestamp: at, ReceivedAt: at,
			Actor: event.Actor{Type: "user", ID: "u"}}
		evs = append(evs, e)
		keys = append(keys, sealer.Key{WorkspaceID: "ws", TimestampNs: at.UnixNano(), ID: e.ID})
	}
	stacktest.InsertEvents(t, srv, db, evs...)
	store := sealer.NewClickHouseStore(srv, db).WithLiteralKeys() // chdbtest sends no external data
	rows, err := store.Rows(ctx, append(keys, sealer.Key{WorkspaceID: "ws", TimestampNs: 1, ID: "none"}))
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.Equal(t, "Source Created", rows[keys[2]].Event)
	copies, err := store.Copies(ctx, append(keys, sealer.Key{WorkspaceID: "ws", TimestampNs: 1, ID: "none"}))
	require.NoError(t, err)
	require.Len(t, copies, 3, "every copy of the stored keys (one each here)")
	require.Len(t, copies[keys[2]], 1)

	h := func(c byte) string { return strings.Repeat(string(c), tlog.HashSize) }
	// 257 leaves: tile 0 complete. Only the right edge and tile 0's level
	// hashes matter to the queries.
	var hashes []migrations.StoredHash
	for x := range tlog.StoredHashCount(257) {
		level, _ := tlog.SplitStoredHashIndex(x)
		hashes = append(hashes, migrations.StoredHash{WorkspaceID: "ws", Index: uint64(x), Hash: h('h'), Level: uint8(level)})
	}
	var leaves []migrations.Leaf
	for i, k := range keys {
		leaves = append(leaves, migrations.Leaf{WorkspaceID: "ws", Index: uint64(254 + i), TimestampNs: k.TimestampNs, ID: k.ID, Hash: h('l'), SealedAt: now.Truncate(time.Second)})
	}
	require.NoError(t, store.Append(ctx, hashes, leaves))
	require.NoError(t, store.SaveCheckpoints(ctx, []migrations.Checkpoint{{WorkspaceID: "ws", Size: 257, Root: h('r'), Note: "n", KeyName: "k", SignedAt: now.Truncate(time.Second)}}))

	states, err := store.Load(ctx, []string{"ws", "ws_empty"}, now.Add(-time.Hour).UnixNano(), 10, 100)
	require.NoError(t, err)
	require.Equal(t, sealer.State{SeenFrom: now.Add(-time.Hour).UnixNano(), Edge: map[int64]tlog.Hash{}}, states["ws_empty"])
	st := states["ws"]
	require.EqualValues(t, 257, st.Size)
	require.Len(t, st.Edge, 2, "256 and 1")
	require.Equal(t, []sealer.Key{keys[2]}, st.Seen)
	require.Len(t, st.Orphans, 1, "indexes 157..253 (of the last 100) have no leaf row; all have the same hash here")
	require.EqualValues(t, 257, st.Signed)
	other := sealer.Key{WorkspaceID: "ws", TimestampNs: 5, ID: keys[1].ID} // another version of a sealed id
	has, err := store.HasLeaves(ctx, "ws", []sealer.Key{keys[0], other, {WorkspaceID: "ws", TimestampNs: 5, ID: "none"}})
	require.NoError(t, err)
	require.Equal(t, map[sealer.Key]bool{keys[0]: true, other: true}, has)
	sizes, err := store.Sizes(ctx, map[string]int64{"ws": 257, "ws_empty": 0, "ws_gone": 3})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"ws": 257, "ws_empty": 0, "ws_gone": -1}, sizes)

	// Tile notes: a log without any starts at its complete tiles; the
	// stored notes count; leaf times read back authenticate nothing here
	// (the stored hashes are not the rows' hashes).
	require.EqualValues(t, 1, st.Noted)
	times, err := store.LeafTimes(ctx, "ws", []int64{254, 255, 256})
	require.NoError(t, err)
	require.Empty(t, times)
	// The background audit's point reads: leaf rows and level-0 hashes.
	audited, err := store.LeavesAt(ctx, []sealer.LeafAt{{WorkspaceID: "ws", Index: 254}, {WorkspaceID: "ws", Index: 256},
		{WorkspaceID: "ws", Index: 300}, {WorkspaceID: "ws_empty", Index: 0}})
	require.NoError(t, err)
	require.Len(t, audited, 2, "254 and 256 have a row and a hash; nothing is stored at the others")
	require.Equal(t, sealer.StoredLeaf{Rows: []migrations.Leaf{{WorkspaceID: "ws", Index: 256, TimestampNs: keys[2].TimestampNs, ID: keys[2].ID, Hash: h('l')}},
		Hash: h('h')}, audited[sealer.LeafAt{WorkspaceID: "ws", Index: 256}])
	require.NoError(t, store.SaveTileNotes(ctx,
		[]migrations.TileNote{{WorkspaceID: "ws", Tile: 1, Newest: old.Truncate(time.Second), Note: "times"}},
		[]migrations.TileNote{{WorkspaceID: "ws", Tile: 1, Newest: old.Truncate(time.Second), Note: "signature"}}))
	states, err = store.Load(ctx, []string{"ws"}, now.Add(-time.Hour).UnixNano(), 10, 100)
	require.NoError(t, err)
	require.EqualValues(t, 2, states["ws"].Noted)
	notes, err := readstore.NewLog(srv, db).TileNotes(ctx, "ws")
	require.NoError(t, err)
	require.Equal(t, readstore.TileNotes{Times: map[int64][]string{1: {"times"}},
		Newest: map[int64][]readstore.NewestNote{1: {{Newest: old.Unix(), Signature: "signature"}}}}, notes)

	// Retention: the old events' leaves (254, 255) go; the first live leaf
	// is 256, so tile 0 (leaves 0..255) is reduced to its own hash.
	e := retention.New(srv, db, 30, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err = e.RunOnce(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM audittrail.audit_log_hashes WHERE level < 8 AND hash_index < ?", tlog.StoredHashIndex(0, 256)).Scan(&n))
		return n == 0
	}, 30*time.Second, 50*time.Millisecond)
	var kept uint64
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM audittrail.audit_log_hashes").Scan(&kept))
	require.EqualValues(t, tlog.StoredHashCount(257)-510, kept)
	// The old tile's times note went with its week; its newest note stays.
	notes, err = readstore.NewLog(srv, db).TileNotes(ctx, "ws")
	require.NoError(t, err)
	require.Empty(t, notes.Times)
	require.Len(t, notes.Newest, 1)
}
