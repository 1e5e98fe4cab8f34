package migrations_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestLogTablesOnClickHouse18 and TestLogTablesOnCurrentClickHouse store
// the integrity log's rows twice (a replay) and read them back collapsed,
// on 18.16 and on current ClickHouse; a leaf lands in the day partition of
// its event's timestamp, as the events table's rows do.
func TestLogTablesOnClickHouse18(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	exerciseLogTables(t, conn, cfg.Database)
}

func TestLogTablesOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: "audittrail", RetentionDays: 30})
	require.NoError(t, err)
	exerciseLogTables(t, srv, "audittrail")
}

func exerciseLogTables(t *testing.T, conn migrations.Conn, db string) {
	ctx := context.Background()
	ts := time.Date(2026, 12, 6, 23, 59, 59, 999, time.UTC)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	hash := func(c string) string { return strings.Repeat(c, 32) } // printable: chdbtest sends SQL text
	leaves := []migrations.Leaf{
		{WorkspaceID: "ws_1", Index: 0, TimestampNs: ts.UnixNano(), ID: "a", Hash: hash("a"), SealedAt: at},
		{WorkspaceID: "ws_1", Index: 1, TimestampNs: ts.UnixNano() + 1, ID: "b", Hash: hash("b"), SealedAt: at},
	}
	hashes := []migrations.StoredHash{
		{WorkspaceID: "ws_1", Index: 0, Hash: hash("a")},
		{WorkspaceID: "ws_1", Index: 1, Hash: hash("b")},
		{WorkspaceID: "ws_1", Index: 2, Hash: hash("c"), Level: 1},
	}
	cp := migrations.Checkpoint{WorkspaceID: "ws_1", Size: 2, Root: hash("c"), Note: "audittrail.local/ws_1\n2\nY2Nj\n\n— k x\n", KeyName: "k", SignedAt: at}
	for range 2 {
		insertRows(t, conn, migrations.Leaves.Insert(db), leaves, migrations.Leaves.Values)
		insertRows(t, conn, migrations.Hashes.Insert(db), hashes, migrations.Hashes.Values)
		insertRows(t, conn, migrations.Checkpoints.Insert(db), []migrations.Checkpoint{cp}, migrations.Checkpoints.Values)
	}

	rows, err := conn.Query(ctx, "SELECT workspace_id, leaf_index, timestamp_ns, id, leaf_hash, sealed_at FROM "+db+"."+migrations.LeavesTable+
		" WHERE workspace_id = ? ORDER BY leaf_index LIMIT 1 BY workspace_id, leaf_index", "ws_1")
	require.NoError(t, err)
	var got []migrations.Leaf
	for rows.Next() {
		var l migrations.Leaf
		require.NoError(t, rows.Scan(&l.WorkspaceID, &l.Index, &l.TimestampNs, &l.ID, &l.Hash, &l.SealedAt))
		l.SealedAt = l.SealedAt.UTC()
		got = append(got, l)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, leaves, got)

	var n, levels uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(level) FROM (SELECT hash_index, level FROM "+db+"."+migrations.HashesTable+
		" WHERE workspace_id = 'ws_1' LIMIT 1 BY workspace_id, hash_index)").Scan(&n, &levels))
	require.EqualValues(t, 3, n)
	require.EqualValues(t, 1, levels)

	var note string
	var size uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT size, note FROM "+db+"."+migrations.CheckpointsTable+
		" WHERE workspace_id = 'ws_1' ORDER BY size DESC LIMIT 1").Scan(&size, &note))
	require.EqualValues(t, 2, size)
	require.Equal(t, cp.Note, note)

	var partition string
	require.NoError(t, conn.QueryRow(ctx, "SELECT any(partition) FROM system.parts WHERE database = ? AND table = ? AND active", db, migrations.LeavesTable).Scan(&partition))
	require.Equal(t, "20261206", partition, "a leaf's partition is its event's UTC day")
}

func insertRows[R any](t *testing.T, conn migrations.Conn, insert string, rows []R, values func(*R) []any) {
	t.Helper()
	batch, err := conn.PrepareBatch(context.WithoutCancel(context.Background()), insert)
	require.NoError(t, err)
	for i := range rows {
		require.NoError(t, batch.Append(values(&rows[i])...))
	}
	require.NoError(t, batch.Send())
}
