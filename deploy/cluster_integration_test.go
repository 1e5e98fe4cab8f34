package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// The local cluster of scripts/ch-cluster: cluster "audit", shard 01 on
// node1, shard 02 on node2, one replica each.
const (
	clusterName = "audit"
	node1       = "127.0.0.1:29001"
	node2       = "127.0.0.1:29002"
)

// home is $AUDITTRAIL_HOME as the scripts resolve it (relative to the
// repository root; .local by default).
func home(root string) string {
	h := os.Getenv("AUDITTRAIL_HOME")
	if h == "" {
		h = ".local"
	}
	if !filepath.IsAbs(h) {
		h = filepath.Join(root, h)
	}
	return h
}

// clusterUp starts the local cluster for the test and stops it at cleanup.
// An exclusive lock keeps concurrent test runs from stopping each other's
// cluster.
func clusterUp(t *testing.T) {
	t.Helper()
	root := repoRoot(t)
	dir := filepath.Join(home(root), "ch-cluster")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	lock, err := os.OpenFile(filepath.Join(dir, "test.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { _ = lock.Close() }) // closing releases the lock, after the cluster is down

	script := func(arg string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "ch-cluster"), arg)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("scripts/ch-cluster %s: %w\n%s", arg, err, out)
		}
		if os.Getenv("AUDITTRAIL_TEST_LOG") == "1" {
			t.Logf("scripts/ch-cluster %s:\n%s", arg, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := script("down", time.Minute); err != nil {
			t.Error(err)
		}
	})
	require.NoError(t, script("up", 3*time.Minute))
}

func openNode(t *testing.T, addr, db string) driver.Conn {
	t.Helper()
	c := chconn.Defaults()
	c.Addr, c.Database, c.Cluster = addr, db, clusterName
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chconn.Open(ctx, c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), q, args...).Scan(&n), q)
	return n
}

// workspacesOn lists the workspaces whose rows node's storage table holds.
func workspacesOn(t *testing.T, conn driver.Conn, db string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT DISTINCT workspace_id FROM %s.audit_events_local ORDER BY workspace_id", db))
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ws string
		require.NoError(t, rows.Scan(&ws))
		out = append(out, ws)
	}
	require.NoError(t, rows.Err())
	return out
}

func row(ws string, ts time.Time, id string) migrations.Row {
	return migrations.Row{
		WorkspaceID: ws, Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(), ID: id,
		Event: "Source Created", Category: "Sources", ActorType: "user", ActorID: "usr_1", ActorName: "Alice",
		ResourceType: "source", ResourceID: "src_" + id, ResourceName: "Source " + id,
		Changes: "{}", Properties: "{}", ReceivedAt: ts.Truncate(time.Second), ReceivedAtNs: ts.UnixNano(),
	}
}

// TestClickHouseCluster applies the schema ON CLUSTER with the migrate
// command on a real two-shard cluster (ClickHouse with ZooKeeper, started by
// scripts/ch-cluster), then writes through the writer's sink and reads
// through the read API's store, and runs retention, as the services do with
// AUDITTRAIL_CLICKHOUSE_CLUSTER set.
func TestClickHouseCluster(t *testing.T) {
	proctest.Require(t)
	start := time.Now()
	clusterUp(t)
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	db := "cluster_" + stacktest.Suffix()
	a, b := openNode(t, node1, db), openNode(t, node2, db)
	t.Cleanup(func() {
		if err := a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+clusterName); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})

	// 1. The migrate command with -cluster, on node1.
	bins, err := proctest.Build(t.TempDir(), "consumers/cmd/migrate")
	require.NoError(t, err)
	bin := bins["migrate"]
	migrate := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "AUDITTRAIL_CLICKHOUSE_ADDR="+node1, "AUDITTRAIL_CLICKHOUSE_DATABASE="+db)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "migrate %v: %s", args, out)
		return string(out)
	}
	require.Contains(t, migrate("-cluster", clusterName, "-print"), "CREATE DATABASE IF NOT EXISTS "+db+" ON CLUSTER "+clusterName)
	ms := migrations.All()
	last := ms[len(ms)-1].Version
	require.Contains(t, migrate("-cluster", clusterName), fmt.Sprintf("cluster %q: applied %v", clusterName, versions(ms)))
	require.Contains(t, migrate("-cluster", clusterName), `cluster "audit": applied []`)

	// Both nodes have both tables; schema_migrations replicated to node2.
	for _, conn := range []driver.Conn{a, b} {
		engines := map[string]string{}
		rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", db)
		require.NoError(t, err)
		for rows.Next() {
			var name, engine string
			require.NoError(t, rows.Scan(&name, &engine))
			engines[name] = engine
		}
		rows.Close()
		// The old events table stands behind a Distributed one until a
		// retention run has moved it (empty here, so it may be gone already).
		delete(engines, "audit_events_v4")
		delete(engines, "audit_events_v4_local")
		require.Equal(t, map[string]string{
			"audit_events":           "Distributed",
			"audit_events_local":     "ReplicatedReplacingMergeTree",
			"audit_event_ids":        "Distributed",
			"audit_event_ids_local":  "ReplicatedMergeTree",
			"schema_migrations":      "ReplicatedMergeTree",
			"audit_partition_counts": "ReplicatedReplacingMergeTree",
			// The integrity log (migration 6), sharded by workspace.
			"audit_log_leaves":            "Distributed",
			"audit_log_leaves_local":      "ReplicatedReplacingMergeTree",
			"audit_log_hashes":            "Distributed",
			"audit_log_hashes_local":      "ReplicatedReplacingMergeTree",
			"audit_log_checkpoints":       "Distributed",
			"audit_log_checkpoints_local": "ReplicatedReplacingMergeTree",
			// Retention policies (migration 7): every node holds them
			// whole; the long-term tables are sharded by workspace.
			"audit_retention":             "ReplicatedReplacingMergeTree",
			"audit_events_kept":           "Distributed",
			"audit_events_kept_local":     "ReplicatedReplacingMergeTree",
			"audit_log_leaves_kept":       "Distributed",
			"audit_log_leaves_kept_local": "ReplicatedReplacingMergeTree",
			// Its tile notes (migration 8).
			"audit_log_tile_times":        "Distributed",
			"audit_log_tile_times_local":  "ReplicatedReplacingMergeTree",
			"audit_log_tile_newest":       "Distributed",
			"audit_log_tile_newest_local": "ReplicatedReplacingMergeTree",
			// The offsets record (migration 9), read by the sealer.
			"audit_event_offsets":       "Distributed",
			"audit_event_offsets_local": "ReplicatedMergeTree",
			// The events layout (migration 5): lookup tables kept by
			// materialized views, and the analysts' view.
			"audit_events_by_actor":          "Distributed",
			"audit_events_by_actor_local":    "ReplicatedReplacingMergeTree",
			"audit_events_by_actor_mv":       "MaterializedView",
			"audit_events_by_event":          "Distributed",
			"audit_events_by_event_local":    "ReplicatedReplacingMergeTree",
			"audit_events_by_event_mv":       "MaterializedView",
			"audit_events_by_resource":       "Distributed",
			"audit_events_by_resource_local": "ReplicatedReplacingMergeTree",
			"audit_events_by_resource_mv":    "MaterializedView",
			"analyst_events":                 "View",
		}, engines)
	}
	require.Eventually(t, func() bool {
		return count(t, b, fmt.Sprintf("SELECT count() FROM %s.schema_migrations WHERE version = %d", db, last)) > 0
	}, 30*time.Second, 100*time.Millisecond, "the migration records replicate to node2, the last one included")
	// A service starting against node2 finds nothing to do; -reapply reruns
	// every statement ON CLUSTER without harm.
	res, err := migrations.Apply(ctx, b, migrations.Options{Database: db, RetentionDays: 90, Cluster: clusterName})
	require.NoError(t, err)
	require.Empty(t, res.Versions)
	res, err = migrations.Apply(ctx, b, migrations.Options{Database: db, RetentionDays: 90, Cluster: clusterName, Reapply: true})
	require.NoError(t, err)
	require.Empty(t, res.Versions)

	// A Distributed front of the old events table left by a migrator that
	// raced the drop of the table behind it (readers would fail on it) is
	// dropped by the next migration run or retention run.
	require.NoError(t, a.Exec(ctx, fmt.Sprintf("CREATE TABLE %[1]s.%[2]s ON CLUSTER %[3]s AS %[1]s.%[4]s ENGINE = Distributed('%[3]s', '%[1]s', '%[2]s_local', rand())",
		db, migrations.LegacyTable, clusterName, migrations.Table)))
	_, err = migrations.MoveLegacy(ctx, b, migrations.Options{Database: db, RetentionDays: 90, Cluster: clusterName}, "00000000")
	require.NoError(t, err)
	for _, conn := range []driver.Conn{a, b} {
		require.Zero(t, count(t, conn, fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'", db, migrations.LegacyTable)),
			"the stale front is gone from both nodes")
	}

	// 2. The writer's sink inserts into the Distributed table; each batch is
	// on the shards when Insert returns (insert_distributed_sync), and every
	// workspace lands on one shard.
	now := time.Now().UTC()
	var batch []migrations.Row
	const workspaces, perDay, days = 24, 5, 3
	for w := range workspaces {
		for d := range days {
			for i := range perDay {
				batch = append(batch, row(fmt.Sprintf("ws_%02d", w), now.Add(-time.Duration(d)*24*time.Hour-time.Duration(i)*time.Minute), fmt.Sprintf("evt_%02d_%d_%d", w, d, i)))
			}
		}
	}
	sink := writer.NewClickHouseSink(a, db)
	require.NoError(t, sink.Insert(ctx, batch))
	stored := count(t, a, "SELECT count() FROM "+db+".audit_events_local") + count(t, b, "SELECT count() FROM "+db+".audit_events_local")
	require.Equal(t, uint64(len(batch)), stored, "rows are on the shards when the insert returns")
	require.NoError(t, sink.Insert(ctx, batch), "a replayed batch") // replay after a crash
	onA, onB := workspacesOn(t, a, db), workspacesOn(t, b, db)
	require.NotEmpty(t, onA, "shard 01 holds workspaces")
	require.NotEmpty(t, onB, "shard 02 holds workspaces")
	all := append(append([]string{}, onA...), onB...)
	sort.Strings(all)
	require.Len(t, all, workspaces, "each workspace on exactly one shard: %v / %v", onA, onB)
	for i := 1; i < len(all); i++ {
		require.NotEqual(t, all[i-1], all[i], "workspace %s on both shards", all[i])
	}

	// 3. The read API's store on the Distributed table, from either node:
	// each event once, despite the replay.
	for _, conn := range []driver.Conn{a, b} {
		st := store.New(conn, db, 90, time.Now)
		for _, ws := range []string{onA[0], onB[0]} {
			page, err := st.List(ctx, store.Filter{WorkspaceID: ws}, nil, 1000)
			require.NoError(t, err)
			require.Len(t, page.Events, perDay*days, ws)
			ids := map[string]bool{}
			for _, e := range page.Events {
				require.Equal(t, ws, e.WorkspaceID)
				require.False(t, ids[e.ID], "event %s shown twice", e.ID)
				ids[e.ID] = true
			}
			ev, err := st.Get(ctx, ws, page.Events[0].ID)
			require.NoError(t, err)
			require.Equal(t, page.Events[0].ID, ev.ID)
			f, err := st.Facets(ctx, store.Filter{WorkspaceID: ws})
			require.NoError(t, err)
			require.Equal(t, []store.EventCount{{Name: "Source Created", Count: perDay * days}}, f.Events)
			// The histogram and the analysts' view read the long-term
			// table beside the events table, whose rows they exclude
			// with a subquery on the events table.
			h, err := st.Histogram(ctx, store.Filter{WorkspaceID: ws}, store.Day, time.UTC)
			require.NoError(t, err)
			total := uint64(0)
			for _, b := range h {
				total += b.Count
			}
			require.EqualValues(t, perDay*days, total, "histogram of %s", ws)
			require.EqualValues(t, perDay*days, count(t, conn, "SELECT count() FROM "+db+"."+migrations.AnalystView+" WHERE workspace_id = '"+ws+"'"), "the analysts' view of %s", ws)
			n := 0
			require.NoError(t, st.Export(ctx, store.Filter{WorkspaceID: ws}, func(*migrations.Row) error { n++; return nil }))
			require.Equal(t, perDay*days, n, "export of %s", ws)
		}
	}

	// The writer's id registry: registered through node1 (Distributed, on
	// the workspaces' shards), read back per Kafka partition through node2
	// from every shard.
	var ids []idwindow.StoredID
	for i, r := range batch {
		ids = append(ids, idwindow.StoredID{Topic: "audit-events", Partition: int32(i % 2), StoredAt: now.Truncate(time.Second),
			WorkspaceID: r.WorkspaceID, ID: r.ID, TimestampNs: r.TimestampNs})
	}
	oldIDs := []idwindow.StoredID{
		{Topic: "audit-events", Partition: 0, StoredAt: now.Add(-95 * 24 * time.Hour), WorkspaceID: onA[0], ID: "evt_old_id_a"},
		{Topic: "audit-events", Partition: 0, StoredAt: now.Add(-96 * 24 * time.Hour), WorkspaceID: onB[0], ID: "evt_old_id_b"},
	}
	require.NoError(t, sink.Register(ctx, append(ids, oldIDs...)))
	recent, err := writer.NewClickHouseSink(b, db).Recent(ctx, "audit-events", 0, now.Add(-time.Hour), 0)
	require.NoError(t, err)
	require.Len(t, recent, len(batch)/2, "partition 0's ids from both shards")
	idShards := map[string]bool{}
	for _, r := range recent {
		require.Equal(t, int32(0), r.Partition)
		idShards[r.WorkspaceID] = true
	}
	require.Len(t, idShards, workspaces)

	// 4. Retention drops expired week partitions on both shards, of the
	// events, and the id registry's days.
	old := []migrations.Row{
		row(onA[0], now.Add(-100*24*time.Hour), "evt_old_a"),
		row(onB[0], now.Add(-120*24*time.Hour), "evt_old_b"),
	}
	require.NoError(t, sink.Insert(ctx, old))
	enf := retention.New(a, db, 90, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil))).OnCluster(clusterName)
	dropped, err := enf.RunOnce(ctx)
	require.NoError(t, err)
	sort.Strings(dropped)
	// Week partitions (migration 5): named by their Monday's day number.
	week := func(ts time.Time) string {
		d := ts.UTC().Truncate(24 * time.Hour)
		monday := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		return strconv.FormatInt(monday.Unix()/86400, 10)
	}
	require.Equal(t, []string{week(old[1].Timestamp), week(old[0].Timestamp)}, dropped)
	for _, conn := range []driver.Conn{a, b} {
		require.Zero(t, count(t, conn, "SELECT count() FROM "+db+".audit_events_local WHERE id LIKE 'evt_old_%'"))
	}
	require.Equal(t, uint64(workspaces), count(t, a, "SELECT uniqExact(workspace_id) FROM "+db+".audit_events"), "only expired days dropped")
	for _, conn := range []driver.Conn{a, b} {
		require.Zero(t, count(t, conn, "SELECT count() FROM "+db+".audit_event_ids_local WHERE id LIKE 'evt_old_id_%'"), "expired registry days dropped")
	}
	require.Equal(t, uint64(len(ids)), count(t, b, "SELECT count() FROM "+db+".audit_event_ids"), "the registry keeps its recent days")
	dropped, err = enf.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, dropped)
	t.Logf("cluster test took %s", time.Since(start).Round(time.Millisecond))
}

// repoRoot is the repository root (the parent of deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	root := filepath.Dir(wd)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "run the tests from deploy/")
	if !strings.HasSuffix(wd, "deploy") {
		t.Fatalf("unexpected working directory %s", wd)
	}
	return root
}

// versions lists the versions of ms.
func versions(ms []migrations.Migration) []uint32 {
	out := make([]uint32, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out
}
