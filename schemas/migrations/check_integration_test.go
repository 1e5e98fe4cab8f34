package migrations_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Check names the migrations a database lacks (all of them when it does
// not exist yet, the last one when only it is missing) and passes once
// they are applied, on ClickHouse 18.16 and on current ClickHouse.
func TestCheckNamesMissingMigrations(t *testing.T) {
	proctest.Require(t)
	conn, cfg := stacktest.ClickHouseConn(t)
	require.NotNil(t, conn)
	defer conn.Close()
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) }()
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
	require.Contains(t, err.Error(), "run migrate")

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
