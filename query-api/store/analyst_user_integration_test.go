package store_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// privateServer starts a ClickHouse server of its own (the installed
// 18.16) from the shipped deploy/clickhouse config.xml and users.xml, on
// free ports in a temporary folder, and stops it at cleanup. It returns
// the native address.
func privateServer(t *testing.T) string {
	proctest.Require(t)
	bin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		bin = "/usr/sbin/clickhouse-server"
	}
	dir := t.TempDir()
	for _, sub := range []string{"etc", "data", "tmp", "user_files", "format_schemas", "log"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o755))
	}
	addr := proctest.FreeAddr()
	_, port, _ := strings.Cut(addr, ":")
	_, httpPort, _ := strings.Cut(proctest.FreeAddr(), ":")
	render := func(name string, more ...string) {
		b, err := os.ReadFile(filepath.Join("../../deploy/clickhouse", name))
		require.NoError(t, err)
		s := strings.NewReplacer(append([]string{"@CH_HOME@", dir}, more...)...).Replace(string(b))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", name), []byte(s), 0o644))
	}
	render("config.xml", "<tcp_port>9000</tcp_port>", "<tcp_port>"+port+"</tcp_port>", "<http_port>8123</http_port>", "<http_port>"+httpPort+"</http_port>")
	render("users.xml")
	logf, err := os.Create(filepath.Join(dir, "log", "stdout.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "etc", "config.xml"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := chconn.Open(ctx, connConfig(addr, "default"))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "the private server did not start; see %s", logf.Name())
	return addr
}

func connConfig(addr, user string) chconn.Config {
	c := chconn.Defaults()
	c.Addr, c.Username, c.Database = addr, user, "default"
	return c
}

// TestAnalystUserOnTheRealServer checks the shipped analyst user on a
// private 18.16 server started from deploy/clickhouse: it reads the view
// (each event once, none past the window), cannot write, create, or raise
// its limits, has the limits of its profile, is stopped by the result
// limit, and cannot read another database. 18.16 has no row policies: the
// per-workspace restriction is only in the cluster config for current
// servers (docs/analysts.md).
func TestAnalystUserOnTheRealServer(t *testing.T) {
	addr := privateServer(t)
	ctx := context.Background()
	admin, err := chconn.Open(ctx, connConfig(addr, "default"))
	require.NoError(t, err)
	defer admin.Close()
	_, err = migrations.Apply(ctx, admin, migrations.Options{Database: "audittrail", RetentionDays: 90})
	require.NoError(t, err)
	evs := cookbookEvents(time.Now().UTC())
	stacktest.InsertEvents(t, admin, "audittrail", evs...)
	stacktest.InsertEvents(t, admin, "audittrail", evs[1])
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE other"))
	require.NoError(t, admin.Exec(ctx, "CREATE TABLE other.t (x UInt8) ENGINE = Memory"))

	// The analyst's session starts in the only database it may use.
	analyst, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr},
		Auth: clickhouse.Auth{Database: "audittrail", Username: "analyst"}})
	require.NoError(t, err)
	defer analyst.Close()
	var n uint64
	require.NoError(t, analyst.QueryRow(ctx, "SELECT count() FROM audittrail.analyst_events WHERE workspace_id = 'ws_1'").Scan(&n))
	require.EqualValues(t, 5, n, "a to e, each once; the expired row hidden")

	denied := func(what string, err error, want string) {
		require.Error(t, err, what)
		require.Contains(t, err.Error(), want, what)
	}
	denied("insert", analyst.Exec(ctx, "INSERT INTO audittrail.audit_events (workspace_id, id) SELECT 'ws_1', 'forged'"), "readonly")
	denied("create", analyst.Exec(ctx, "CREATE TABLE audittrail.x (x UInt8) ENGINE = Memory"), "readonly")
	denied("drop", analyst.Exec(ctx, "DROP TABLE audittrail.analyst_events"), "readonly")
	raise := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_result_rows": 0}))
	var limit string
	err = analyst.QueryRow(raise, "SELECT value FROM system.settings WHERE name = 'max_result_rows'").Scan(&limit)
	require.True(t, err != nil || limit == "1000000", "a query's settings do not raise a limit (refused, or ignored): %v %q", err, limit)
	t.Logf("a query asking for max_result_rows=0: err=%v, value=%q", err, limit)
	denied("another database", analyst.QueryRow(ctx, "SELECT count() FROM other.t").Scan(&n), "Access denied")

	for name, want := range map[string]string{
		"readonly": "1", "max_execution_time": "60", "max_memory_usage": "2000000000",
		"max_result_rows": "1000000", "max_result_bytes": "1000000000", "result_overflow_mode": "throw", "max_rows_to_read": "2000000000",
		"max_concurrent_queries_for_user": "4", "max_memory_usage_for_user": "4000000000",
	} {
		var got string
		require.NoError(t, analyst.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = ?", name).Scan(&got))
		require.Equal(t, want, got, name)
	}
	denied("too many result rows", drain(analyst.Query(ctx, "SELECT number FROM system.numbers LIMIT 1000001")), "Limit for result exceeded")
	denied("too many result rows, asking for no limit", drain(analyst.Query(raise, "SELECT number FROM system.numbers LIMIT 1000001")), "Limit for result exceeded")
}

// drain reads every row of a query and returns its error.
func drain(rows driver.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
