package migrations_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Check names the migrations a database lacks (all of them when it does
// not exist yet, the last one when only it is missing) and passes once
// they are applied, on ClickHouse 18.16 and on current ClickHouse.
func TestCheckNamesMissingMigrations(t *testing.T) {
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	testCheck(t, conn, cfg.Database)
}

func TestCheckNamesMissingMigrationsOnCurrentClickHouse(t *testing.T) {
	testCheck(t, chdbtest.Start(t), "audittrail")
}

func testCheck(t *testing.T, conn migrations.Conn, db string) {
	ctx := context.Background()
	all := migrations.All()
	var versions []uint32
	for _, m := range all {
		versions = append(versions, m.Version)
	}
	var behind *migrations.BehindError
	err := migrations.Check(ctx, conn, db)
	require.True(t, errors.As(err, &behind), "%v", err)
	require.Equal(t, versions, behind.Missing, "a database that does not exist lacks every migration")
	require.Contains(t, err.Error(), "run this release's migrate first")

	_, err = migrations.Apply(ctx, conn, migrations.Options{Database: db, RetentionDays: 30})
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, conn, db))

	last := all[len(all)-1].Version
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = ?", last))
	require.Eventually(t, func() bool {
		err := migrations.Check(ctx, conn, db)
		return errors.As(err, &behind) && len(behind.Missing) == 1 && behind.Missing[0] == last
	}, 30*time.Second, 20*time.Millisecond, "the last migration's record removed: Check names it")
}

// A service that does not migrate at start (Ensure without apply) refuses
// a database an older release migrated (to 8: no offsets record), naming
// the missing migration and the migrate command, and changes nothing;
// once migrated it passes, and a newer schema (a version this binary does
// not know) passes too. On ClickHouse 18.16 and on current ClickHouse.
func TestEnsureRefusesAnOlderSchema(t *testing.T) {
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	testEnsure(t, conn, cfg.Database)
}

func TestEnsureRefusesAnOlderSchemaOnCurrentClickHouse(t *testing.T) {
	testEnsure(t, chdbtest.Start(t), "audittrail")
}

func testEnsure(t *testing.T, conn migrations.Conn, db string) {
	ctx := context.Background()
	o := migrations.Options{Database: db, RetentionDays: 30}
	older := o
	older.UpTo = 8
	res, err := migrations.Apply(ctx, conn, older)
	require.NoError(t, err)
	require.Equal(t, []uint32{1, 2, 3, 4, 5, 6, 7, 8}, res.Versions, "an older release's schema")
	require.False(t, tableExists(t, conn, db, migrations.OffsetsTable))

	for range 2 {
		_, err = migrations.Ensure(ctx, conn, o, false)
		var behind *migrations.BehindError
		require.ErrorAs(t, err, &behind)
		require.Equal(t, []uint32{9}, behind.Missing)
		require.Equal(t, uint32(8), behind.Newest)
		require.Contains(t, err.Error(), "database "+db+" lacks migration 9 (offsets record) (newest recorded: 8)")
		require.Contains(t, err.Error(), "run this release's migrate first")
		require.False(t, tableExists(t, conn, db, migrations.OffsetsTable), "checking changes nothing")
	}

	res, err = migrations.Ensure(ctx, conn, o, true)
	require.NoError(t, err)
	require.Equal(t, []uint32{9}, res.Versions, "applying at start applies what is missing")
	require.True(t, tableExists(t, conn, db, migrations.OffsetsTable))
	res, err = migrations.Ensure(ctx, conn, o, false)
	require.NoError(t, err)
	require.Empty(t, res.Versions)
	require.NotZero(t, res.Server.Major, "the server's version is still reported")

	_, err = migrations.Ensure(ctx, conn, migrations.Options{Database: db}, false)
	require.ErrorContains(t, err, "retention days", "options are checked as Apply checks them")

	// Recorded but missing on this server (dropped by hand, or a cluster
	// node added without -reapply): migrating at start does not see it
	// (every version is recorded), the table check names it either way.
	require.NoError(t, conn.Exec(ctx, "DROP TABLE "+db+"."+migrations.OffsetsTable))
	for _, apply := range []bool{false, true} {
		_, err = migrations.Ensure(ctx, conn, o, apply)
		var missing *migrations.MissingTablesError
		require.ErrorAs(t, err, &missing, "apply %v", apply)
		require.Equal(t, []string{migrations.OffsetsTable}, missing.Tables)
		require.Contains(t, err.Error(), "lacks "+migrations.OffsetsTable+": run this release's migrate -reapply")
	}
	reapply := o
	reapply.Reapply = true
	_, err = migrations.Apply(ctx, conn, reapply)
	require.NoError(t, err)
	_, err = migrations.Ensure(ctx, conn, o, false)
	require.NoError(t, err, "-reapply created it")

	// The analysts' view is not the services': a migrating start drops
	// and creates it again when the window changes.
	require.NoError(t, conn.Exec(ctx, "DROP TABLE "+db+"."+migrations.AnalystView))
	_, err = migrations.Ensure(ctx, conn, o, false)
	require.NoError(t, err)

	// A newer release recorded a migration this binary does not know, and
	// may have reshaped tables this release lists: the schema passes,
	// without the table check (this release's -reapply would undo it).
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name)")
	require.NoError(t, err)
	require.NoError(t, batch.Append(uint32(1000), "a later release"))
	require.NoError(t, batch.Send())
	require.NoError(t, conn.Exec(ctx, "DROP TABLE "+db+"."+migrations.OffsetsTable))
	_, err = migrations.Ensure(ctx, conn, o, false)
	require.NoError(t, err, "a newer schema is fine")
}

func tableExists(t *testing.T, conn migrations.Conn, db, table string) bool {
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&n))
	return n > 0
}
