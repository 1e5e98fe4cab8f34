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
	require.Equal(t, []uint32{1, 2}, res.Versions)
	ran := srv.Statements()
	want := Prepare(o)
	for _, m := range All() {
		want = append(want, m.Statements(o, current)...)
	}
	for _, s := range want {
		require.Contains(t, ran, s, "ran as generated for %s", current)
	}
	require.Contains(t, strings.Join(want, "\n"), retentionTTL(30))
	require.Contains(t, strings.Join(want, "\n"), registryTTL(30))
	require.NotContains(t, strings.Join(ran, "\n"), "ALTER", "a table created with the TTL is not altered")

	ttls := func(days int) map[string]string {
		return map[string]string{Table: retentionTTL(days), IDsTable: registryTTL(days)}
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
	for table, ttl := range ttls(7) {
		require.Contains(t, srv.Statements()[n:], ttlChange(o, table, ttl, false))
		full := engineFull(t, srv, o.Database, table)
		require.Contains(t, full, ttl, table)
		require.NotContains(t, full, ttls(30)[table], table)
	}
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
