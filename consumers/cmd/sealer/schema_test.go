package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestStartRefusesAnOlderSchema: a sealer told not to migrate
// (AUDITTRAIL_MIGRATE_AT_START=false) that finds the schema an older
// release left (migrations 1 to 8: no offsets record, which it reads)
// refuses to start, naming the missing migration and the migrate command,
// and changes nothing. On ClickHouse 18.16.
func TestStartRefusesAnOlderSchema(t *testing.T) {
	proctest.Require(t)
	ctx := context.Background()
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	_, err := migrations.Apply(ctx, conn, migrations.Options{Database: cfg.Database, RetentionDays: 90, UpTo: 8})
	require.NoError(t, err)
	bins, err := proctest.Build(t.TempDir(), "consumers/cmd/sealer")
	require.NoError(t, err)
	skey, vkey, err := note.GenerateKey(rand.Reader, "test")
	require.NoError(t, err)
	names := stacktest.Topics(t, 1, "events", "checkpoints")

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(rctx, bins["sealer"])
	cmd.Env = append(os.Environ(),
		"AUDITTRAIL_KAFKA_BROKERS="+strings.Join(stacktest.Brokers(), ","),
		"AUDITTRAIL_KAFKA_TOPIC="+names[0],
		"AUDITTRAIL_CHECKPOINTS_TOPIC="+names[1],
		"AUDITTRAIL_CLICKHOUSE_ADDR="+cfg.Addr,
		"AUDITTRAIL_CLICKHOUSE_DATABASE="+cfg.Database,
		"AUDITTRAIL_SEALER_ADDR="+proctest.FreeAddr(),
		"AUDITTRAIL_SIGNING_KEY="+skey,
		"AUDITTRAIL_VERIFIER_KEYS="+vkey,
		"AUDITTRAIL_MIGRATE_AT_START=false")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the sealer exits: %s", out)
	require.NotZero(t, exit.ExitCode())
	require.Contains(t, string(out), "database "+cfg.Database+" lacks migration 9 (offsets record) (newest recorded: 8)")
	require.Contains(t, string(out), "run this release's migrate first")
	require.Contains(t, string(out), config.MigrateAtStart.Name+"=false: this service does not migrate")
	require.Empty(t, stacktest.Strings(t, conn, "SELECT name FROM system.tables WHERE database = ? AND name = ?", cfg.Database, migrations.OffsetsTable),
		"a sealer told not to migrate changes nothing")
}
