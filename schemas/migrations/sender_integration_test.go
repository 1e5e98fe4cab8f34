package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestSenderColumnsOnAnExistingTableOnTheRealServer upgrades a schema made
// before migration 3 on the real server (18.16, which has no ADD COLUMN IF
// NOT EXISTS): Apply adds the sender columns once, rows stored before read
// ”, new rows store the sender, and later starts - reapplied or not - find
// the columns and issue no ALTER that would fail.
func TestSenderColumnsOnAnExistingTableOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	ctx := context.Background()
	o := migrations.Options{Database: cfg.Database, RetentionDays: 30}
	v, err := migrations.ServerVersion(ctx, conn)
	require.NoError(t, err)

	// The schema as migrations 1 and 2 made it before the sender existed.
	old := migrations.All()[:2]
	stmts := migrations.Prepare(o)
	for _, m := range old {
		for _, s := range m.Statements(o, v) {
			for _, a := range migrations.All()[2].Adds {
				s = strings.Replace(s, ",\n    "+a.Column, "", 1)
			}
			stmts = append(stmts, s)
		}
	}
	for _, s := range stmts {
		require.NoError(t, conn.Exec(ctx, s))
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", cfg.Database))
	require.NoError(t, err)
	for _, m := range old {
		require.NoError(t, batch.Append(m.Version, m.Name))
	}
	require.NoError(t, batch.Send())
	oldCols := migrations.InsertColumns[:len(migrations.InsertColumns)-2]
	require.NotContains(t, oldCols, "sender_producer")
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	batch, err = conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", cfg.Database, migrations.Table, strings.Join(oldCols, ", ")))
	require.NoError(t, err)
	oldRow := migrations.RowOf(&event.Event{ID: "old", WorkspaceID: "ws_1", Timestamp: ts, ReceivedAt: ts})
	require.NoError(t, batch.Append(oldRow.Values()[:len(oldCols)]...))
	require.NoError(t, batch.Send())

	res, err := migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	require.Equal(t, []uint32{3, 4, 5, 6, 7, 8, 9}, res.Versions, "the sender columns, the partition counts, the events layout, the integrity log, the retention policies, the tile notes, the offsets record")
	// The old row moves into the new events table (migration 5).
	_, err = migrations.MoveLegacy(ctx, conn, o, "19700101")
	require.NoError(t, err)

	stacktest.InsertEvents(t, conn, cfg.Database, event.Event{ID: "new", WorkspaceID: "ws_1", Timestamp: ts, ReceivedAt: ts,
		Sender: event.Sender{CredentialID: "legacy-0123456789ab", Producer: "billing"}})
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id, sender_credential_id, sender_producer FROM %s.%s ORDER BY id", cfg.Database, migrations.Table))
	require.NoError(t, err)
	var got [][3]string
	for rows.Next() {
		var r [3]string
		require.NoError(t, rows.Scan(&r[0], &r[1], &r[2]))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, [][3]string{{"new", "legacy-0123456789ab", "billing"}, {"old", "", ""}}, got)

	for _, reapply := range []bool{false, true} {
		o.Reapply = reapply
		res, err = migrations.Apply(ctx, conn, o)
		require.NoError(t, err, "reapply=%v", reapply)
		require.Empty(t, res.Versions)
	}
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name LIKE 'sender_%'",
		cfg.Database, migrations.Table).Scan(&n))
	require.Equal(t, uint64(2), n)
}
