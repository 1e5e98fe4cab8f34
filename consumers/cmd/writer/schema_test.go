package main

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestStartRefusesAnOlderSchema: a writer told not to migrate
// (AUDITTRAIL_MIGRATE_AT_START=false) that finds the schema an older
// release left (migrations 1 to 8, no offsets record) refuses to start,
// naming the missing migration and the migrate command, instead of
// failing every batch's offsets insert; it changes nothing. Once the
// schema is migrated it starts. A writer left to migrate (the default)
// applies the missing migration and starts, and refuses to start on a
// table missing although its migration is recorded. On ClickHouse 18.16.
func TestStartRefusesAnOlderSchema(t *testing.T) {
	ctx := context.Background()
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	o := migrations.Options{Database: cfg.Database, RetentionDays: 90}
	older := o
	older.UpTo = 8
	_, err := migrations.Apply(ctx, conn, older)
	require.NoError(t, err)
	offsetsTable := func() bool {
		return len(stacktest.Strings(t, conn, "SELECT name FROM system.tables WHERE database = ? AND name = ?", cfg.Database, migrations.OffsetsTable)) > 0
	}
	require.False(t, offsetsTable())

	p := newProcess(t, "AUDITTRAIL_CLICKHOUSE_DATABASE="+cfg.Database, "AUDITTRAIL_MIGRATE_AT_START=false")
	out := p.refused()
	require.Contains(t, string(out), "database "+cfg.Database+" lacks migration 9 (offsets record) (newest recorded: 8)")
	require.Contains(t, string(out), "run this release's migrate first")
	require.Contains(t, string(out), config.MigrateAtStart.Name+"=false: this service does not migrate")
	require.False(t, offsetsTable(), "a writer told not to migrate changes nothing")

	_, err = migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	require.True(t, offsetsTable())
	p.start()
	p.proc.Stop(syscall.SIGKILL, time.Minute)

	// The default: the writer applies the missing migration itself.
	require.NoError(t, conn.Exec(ctx, "DROP TABLE "+cfg.Database+"."+migrations.OffsetsTable))
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE "+cfg.Database+".schema_migrations DELETE WHERE version = 9"))
	require.Eventually(t, func() bool {
		return len(stacktest.Strings(t, conn, "SELECT name FROM "+cfg.Database+".schema_migrations WHERE version = 9")) == 0
	}, 30*time.Second, 20*time.Millisecond, "migration 9's record removed")
	d := newProcess(t, "AUDITTRAIL_CLICKHOUSE_DATABASE="+cfg.Database)
	d.start()
	require.True(t, offsetsTable(), "the writer applied migration 9 at start")
	d.proc.Stop(syscall.SIGKILL, time.Minute)

	// Recorded but missing (dropped by hand, or a cluster node added
	// without -reapply): migrating finds nothing to apply, and the writer
	// refuses to start rather than fail every offsets insert.
	require.NoError(t, conn.Exec(ctx, "DROP TABLE "+cfg.Database+"."+migrations.OffsetsTable))
	out = d.refused()
	require.Contains(t, string(out), "lacks "+migrations.OffsetsTable+": run this release's migrate -reapply")
}

// refused runs the writer, which must exit with a non-zero status before
// it is ready, and returns its output.
func (p *process) refused() []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(p.t, err, &exit, "the writer exits: %s", out)
	require.NotZero(p.t, exit.ExitCode())
	return out
}
