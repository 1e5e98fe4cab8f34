package sealer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// keptStoreCase stores long-term rows and leaves through store and checks
// what KeptRows and KeptLeaves find: rows kept by their policy (of a key
// with a restored copy too, the policy's), not restored ones; leaves by
// (workspace, id), whatever their timestamp, each once though stored
// twice.
func keptStoreCase(t *testing.T, conn interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}, db string, store *sealer.ClickHouseStore) {
	ctx := context.Background()
	old := time.Now().UTC().Add(-200 * 24 * time.Hour).Truncate(time.Millisecond)
	row := func(ws, id, actor string, at time.Time) migrations.Row {
		e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: at, ReceivedAt: at.Add(time.Second),
			Actor: event.Actor{Type: "user", ID: actor}, Resource: event.Resource{Type: "source", ID: "src_1"}}
		return migrations.RowOf(&e)
	}
	kept, restored := row("ws_a", "a", "usr_1", old), row("ws_a", "r", "usr_1", old.Add(time.Second))
	both, bothRestored := row("ws_b", "b", "usr_1", old), row("ws_b", "b", "usr_restored", old)
	b, err := conn.PrepareBatch(ctx, migrations.KeptInsert(db))
	require.NoError(t, err)
	until := time.Now().UTC().AddDate(0, 1, 0).Truncate(24 * time.Hour)
	for _, r := range []struct {
		row      migrations.Row
		restored bool
	}{{kept, false}, {restored, true}, {both, false}, {bothRestored, true}} {
		var u time.Time
		if r.restored {
			u = until
		}
		require.NoError(t, b.Append(migrations.KeptValues(&r.row, r.restored, u)...))
	}
	require.NoError(t, b.Send())
	key := func(r migrations.Row) sealer.Key {
		return sealer.Key{WorkspaceID: r.WorkspaceID, TimestampNs: r.TimestampNs, ID: r.ID}
	}
	got, err := store.KeptRows(ctx, []sealer.Key{key(kept), key(restored), key(both), {WorkspaceID: "ws_a", TimestampNs: old.UnixNano(), ID: "none"}})
	require.NoError(t, err)
	require.Len(t, got, 2, "the policy's rows; not the restored one")
	for _, want := range []migrations.Row{kept, both} {
		r := got[key(want)]
		require.Equal(t, "usr_1", r.ActorID, "%s: the policy's copy", want.ID)
		require.Equal(t, leaf.Hash(&want), leaf.Hash(&r), "%s: the row as stored", want.ID)
	}

	h := strings.Repeat("h", 32)
	leaves := []migrations.Leaf{
		{WorkspaceID: "ws_a", Index: 0, TimestampNs: kept.TimestampNs, ID: "a", Hash: h, SealedAt: time.Now().UTC().Truncate(time.Second)},
		{WorkspaceID: "ws_b", Index: 3, TimestampNs: both.TimestampNs, ID: "b", Hash: h, SealedAt: time.Now().UTC().Truncate(time.Second)},
	}
	require.NoError(t, store.AppendKept(ctx, leaves))
	require.NoError(t, store.AppendKept(ctx, leaves[:1]), "stored again (a replay)")
	otherTime := sealer.Key{WorkspaceID: "ws_a", TimestampNs: 5, ID: "a"} // another version of a sealed id
	has, err := store.KeptLeaves(ctx, []sealer.Key{otherTime, {WorkspaceID: "ws_b", TimestampNs: 5, ID: "a"},
		{WorkspaceID: "ws_a", TimestampNs: 5, ID: "b"}, key(both), {WorkspaceID: "ws_c", TimestampNs: 5, ID: "c"}})
	require.NoError(t, err)
	require.Equal(t, map[sealer.Key]bool{otherTime: true, key(both): true}, has, "by workspace and id")
	has, err = store.KeptLeaves(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, has)
}

// TestTheLongTermTablesQueriesOnTheRealServer: the queries on 18.16
// (keys as external data), and that a lookup reads the long-term leaves
// of its keys' workspaces only: one key of a workspace with 10 leaves,
// beside one with 200,000, reads at most two granules (8,192 rows each).
func TestTheLongTermTablesQueriesOnTheRealServer(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	store := sealer.NewClickHouseStore(conn, ch.Database)
	keptStoreCase(t, conn, ch.Database, store)

	table := ch.Database + "." + migrations.KeptLeavesTable
	cols := "(workspace_id, leaf_index, timestamp_ns, id, leaf_hash, sealed_at)"
	require.NoError(t, conn.Exec(ctx, "INSERT INTO "+table+" "+cols+" SELECT 'ws_big', number, number, toString(number), toFixedString('"+strings.Repeat("h", 32)+"', 32), now() FROM system.numbers LIMIT 200000"))
	require.NoError(t, conn.Exec(ctx, "INSERT INTO "+table+" "+cols+" SELECT 'ws_small', number, number, toString(number), toFixedString('"+strings.Repeat("h", 32)+"', 32), now() FROM system.numbers LIMIT 10"))
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"))
	qid := "kept-leaves-" + stacktest.Suffix()
	lctx := clickhouse.Context(ctx, clickhouse.WithQueryID(qid), clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
	has, err := store.KeptLeaves(lctx, []sealer.Key{{WorkspaceID: "ws_small", TimestampNs: 1, ID: "7"}, {WorkspaceID: "ws_small", TimestampNs: 1, ID: "70"}})
	require.NoError(t, err)
	require.Equal(t, map[sealer.Key]bool{{WorkspaceID: "ws_small", TimestampNs: 1, ID: "7"}: true}, has)
	var read uint64
	require.Eventually(t, func() bool {
		require.NoError(t, conn.Exec(ctx, "SYSTEM FLUSH LOGS"))
		require.NoError(t, conn.QueryRow(ctx, "SELECT max(read_rows) FROM system.query_log WHERE query_id = ? AND type = 2", qid).Scan(&read))
		return read > 0
	}, 20*time.Second, 100*time.Millisecond)
	t.Logf("a lookup of 2 keys read %d rows of 200,014 long-term leaves", read)
	require.LessOrEqual(t, read, uint64(2*8192+2), "the workspace's granules (and the 2 keys sent)")
}

// TestTheLongTermTablesQueriesOnCurrentClickHouse: the same on current
// ClickHouse (chdb, in process; keys named in the query text).
func TestTheLongTermTablesQueriesOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	const db = "audittrail"
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: db, RetentionDays: 30})
	require.NoError(t, err)
	keptStoreCase(t, srv, db, sealer.NewClickHouseStore(srv, db).WithLiteralKeys())
}
