package migrations

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
)

// current is the server version chdb-core 26.9.0 embeds (scripts/lib/chdb.sh).
var current = Version{26, 9}

// TestMigrationsOnCurrentClickHouse applies the migrations on current
// ClickHouse (26.9, in process through chdb): the DDL with its TTL clauses
// is accepted, the server prints each table's TTL exactly as retentionTTL
// and registryTTL write it (so a service start finds it with tableHas and
// issues no MODIFY TTL, which rewrites every part), and a new retention
// window is set by ttlChange's ALTERs.
func TestMigrationsOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := Options{Database: "audittrail", RetentionDays: 30}

	res, err := Apply(ctx, srv, o)
	require.NoError(t, err)
	require.Equal(t, current, res.Server, "chdb %s", srv.Version)
	require.Equal(t, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9}, res.Versions)
	ran := srv.Statements()
	want := Prepare(o)
	for _, m := range All() {
		if len(m.Adds) == 0 { // the CREATEs already carry added columns
			want = append(want, m.Statements(o, current)...)
		}
	}
	for _, s := range want {
		require.Contains(t, ran, s, "ran as generated for %s", current)
	}
	require.Contains(t, strings.Join(want, "\n"), retentionTTL(30))
	require.Contains(t, strings.Join(want, "\n"), registryTTL(30))
	// The events and lookup tables are created with the window's TTL by
	// migrations 1 and 5, then raised once to the backstop of per-workspace
	// retention (migration 7); the id registry keeps the window's.
	var altered, wantAltered []string
	for _, s := range ran {
		if strings.HasPrefix(s, "ALTER") {
			altered = append(altered, s)
		}
	}
	for _, tt := range ttlTables(30) {
		if tt.table != IDsTable {
			wantAltered = append(wantAltered, ttlChange(o, tt.table, retentionTTL(MaxRetentionDays), false))
		}
	}
	require.Equal(t, wantAltered, altered, "only the events tables' TTL is altered, to the backstop")

	ttls := func(days int) map[string]string {
		return map[string]string{Table: retentionTTL(MaxRetentionDays), IDsTable: registryTTL(days)}
	}
	for table, ttl := range ttls(30) {
		require.Contains(t, engineFull(t, srv, o.Database, table), ttl, "the server prints %s's TTL as written", table)
		set, err := tableHas(ctx, srv, o.Database, table, ttl)
		require.NoError(t, err)
		require.True(t, set, table)
	}

	// A restart with the same window changes nothing.
	res, err = Apply(ctx, srv, o)
	require.NoError(t, err)
	require.Empty(t, res.Versions)
	require.NotContains(t, strings.Join(srv.Statements()[len(ran):], "\n"), "ALTER")

	// A new window is set once, then found.
	o.RetentionDays = 7
	n := len(srv.Statements())
	_, err = Apply(ctx, srv, o)
	require.NoError(t, err)
	require.Contains(t, srv.Statements()[n:], ttlChange(o, IDsTable, registryTTL(7), false))
	require.NotContains(t, strings.Join(srv.Statements()[n:], "\n"), "ALTER TABLE audittrail.audit_events ", "the events' TTL is the backstop, whatever the window")
	for table, ttl := range ttls(7) {
		full := engineFull(t, srv, o.Database, table)
		require.Contains(t, full, ttl, table)
	}
	require.NotContains(t, engineFull(t, srv, o.Database, IDsTable), registryTTL(30))
	n = len(srv.Statements())
	_, err = Apply(ctx, srv, o)
	require.NoError(t, err)
	require.NotContains(t, strings.Join(srv.Statements()[n:], "\n"), "ALTER")

	// Reapply runs every statement again (all idempotent) and sets the TTL.
	o.Reapply = true
	n = len(srv.Statements())
	_, err = Apply(ctx, srv, o)
	require.NoError(t, err)
	for table, ttl := range ttls(7) {
		require.Contains(t, srv.Statements()[n:], ttlChange(o, table, ttl, false))
	}

	var recorded uint64
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM audittrail.schema_migrations").Scan(&recorded))
	require.EqualValues(t, len(All()), recorded, "each migration recorded once")
}

func engineFull(t *testing.T, srv *chdbtest.Server, db, table string) string {
	t.Helper()
	var s string
	require.NoError(t, srv.QueryRow(context.Background(),
		"SELECT engine_full FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&s))
	return s
}

// TestSenderColumnsOnAnExistingTableOnCurrentClickHouse upgrades a schema
// made before migration 3 (events table without the sender columns, a row
// in it) on current ClickHouse: Apply adds the columns with IF NOT EXISTS,
// the old row reads ”, and later starts, reapplied or not, issue no ALTER.
func TestSenderColumnsOnAnExistingTableOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := Options{Database: "audittrail", RetentionDays: 30}
	for _, s := range append(Prepare(o), withoutSenderColumns(createEvents(o, current))...) {
		require.NoError(t, srv.Exec(ctx, s))
	}
	for _, m := range All()[1:2] {
		for _, s := range m.Statements(o, current) {
			require.NoError(t, srv.Exec(ctx, s))
		}
	}
	for _, m := range All()[:2] {
		require.NoError(t, record(ctx, srv, o.Database, m))
	}
	require.NoError(t, srv.Exec(ctx, "INSERT INTO audittrail.audit_events (workspace_id, id, timestamp, timestamp_ns) VALUES ('ws_1', 'old', now(), 1)"))
	has, err := columnExists(ctx, srv, o.Database, Table, "sender_producer")
	require.NoError(t, err)
	require.False(t, has)

	n := len(srv.Statements())
	res, err := Apply(ctx, srv, o)
	require.NoError(t, err)
	require.Equal(t, []uint32{3, 4, 5, 6, 7, 8, 9}, res.Versions, "the sender columns, the partition counts, the events layout, the integrity log, the retention policies, the tile notes, the offsets record")
	// The old row moves into the new events table (migration 5).
	_, err = MoveLegacy(ctx, srv, o, "19700101")
	require.NoError(t, err)
	ran := srv.Statements()[n:]
	for _, s := range All()[2].Statements(o, current) {
		require.Contains(t, ran, s)
	}
	require.NoError(t, srv.Exec(ctx, "INSERT INTO audittrail.audit_events (workspace_id, id, timestamp, timestamp_ns, sender_credential_id, sender_producer) VALUES ('ws_1', 'new', now(), 2, 'legacy-0123456789ab', 'billing')"))
	rows, err := srv.Query(ctx, "SELECT id, sender_credential_id, sender_producer FROM audittrail.audit_events ORDER BY id")
	require.NoError(t, err)
	var got [][3]string
	for rows.Next() {
		var r [3]string
		require.NoError(t, rows.Scan(&r[0], &r[1], &r[2]))
		got = append(got, r)
	}
	require.Equal(t, [][3]string{{"new", "legacy-0123456789ab", "billing"}, {"old", "", ""}}, got)

	for _, reapply := range []bool{false, true} {
		o.Reapply = reapply
		n = len(srv.Statements())
		res, err = Apply(ctx, srv, o)
		require.NoError(t, err)
		require.Empty(t, res.Versions)
		require.NotContains(t, strings.Join(srv.Statements()[n:], "\n"), "ADD COLUMN", "reapply=%v", reapply)
	}
}
