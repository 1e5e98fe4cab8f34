// Package retention enforces the retention window on ClickHouse.
//
// It drops whole day partitions of the events table once every event in them
// is older than the window. It works on every server version; servers with
// TTL support also expire rows by the table's TTL. Rows in the one partially
// expired day stay on disk until the next day, and the read path never
// returns them (it filters by the window itself).
//
// The integrity log's leaf rows are partitioned like the events, by the
// event's day, and go with them; the stored hashes of tiles whose events
// all expired are then reduced to the tiles' own hashes (ReduceLog).
//
// On a cluster (see OnCluster) it lists the partitions of every shard and
// drops them from the replicated storage tables ON CLUSTER.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the enforcer needs of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Enforcer drops expired partitions. It is safe for concurrent use; several
// writer instances may run it at once (dropping a partition twice is a no-op).
type Enforcer struct {
	conn     Conn
	database string
	schema   migrations.Options
	days     int
	now      func() time.Time
	log      *slog.Logger
	// reduced is set once ReduceLog ran in this process; later runs reduce
	// only after leaves were dropped.
	reduced atomic.Bool
}

// New returns an enforcer for database.audit_events with a window of days.
func New(conn Conn, database string, days int, now func() time.Time, log *slog.Logger) *Enforcer {
	if now == nil {
		now = time.Now
	}
	return &Enforcer{conn: conn, database: database, schema: migrations.Options{Database: database}, days: days, now: now, log: log}
}

// OnCluster makes e work on the schema migrations created on cluster (the
// name in remote_servers; empty means a single server): partitions are
// listed on one replica of every shard through the cluster table function
// and dropped with ALTER TABLE ... ON CLUSTER ... DROP PARTITION on the
// replicated storage table (audit_events_local). It returns e and must be
// called before e is used.
func (e *Enforcer) OnCluster(cluster string) *Enforcer {
	e.schema.Cluster = cluster
	return e
}

var dayPartition = regexp.MustCompile(`^\d{8}$`)

// Cutoff returns the oldest partition id (YYYYMMDD, UTC) that may still hold
// events inside the window; partitions before it are dropped.
func (e *Enforcer) Cutoff() string {
	return e.now().UTC().Add(-time.Duration(e.days) * 24 * time.Hour).Format("20060102")
}

// RunOnce drops every day partition entirely outside the window and returns
// the ids it dropped from the events table. The id registry's day
// partitions go a day later (migrations.IDsRetentionDays); the integrity
// log's leaves go with the events, and then its expired tiles are reduced
// (ReduceLog).
func (e *Enforcer) RunOnce(ctx context.Context) ([]string, error) {
	dropped, err := e.dropExpired(ctx, migrations.Table, e.Cutoff())
	if err != nil {
		return dropped, fmt.Errorf("%s: %w", migrations.Table, err)
	}
	idsCutoff := e.now().UTC().Add(-time.Duration(migrations.IDsRetentionDays(e.days)) * 24 * time.Hour).Format("20060102")
	if _, err := e.dropExpired(ctx, migrations.IDsTable, idsCutoff); err != nil {
		return dropped, fmt.Errorf("%s: %w", migrations.IDsTable, err)
	}
	leaves, err := e.dropExpired(ctx, migrations.LeavesTable, e.Cutoff())
	if err != nil {
		return dropped, fmt.Errorf("%s: %w", migrations.LeavesTable, err)
	}
	if len(leaves) > 0 || !e.reduced.Load() {
		reduced, err := e.ReduceLog(ctx)
		if err != nil {
			return dropped, err
		}
		e.reduced.Store(true)
		if len(reduced) > 0 {
			e.log.Info("retention reduced expired tiles of the integrity log", "workspaces", len(reduced))
		}
	}
	return dropped, nil
}

// dropExpired drops the table's day partitions before cutoff (YYYYMMDD); on
// a cluster, those of its storage table on every shard.
func (e *Enforcer) dropExpired(ctx context.Context, name, cutoff string) ([]string, error) {
	table := e.schema.StorageTable(name)
	parts := "system.parts"
	if e.schema.Cluster != "" {
		parts = fmt.Sprintf("cluster('%s', system.parts)", e.schema.Cluster)
	}
	rows, err := e.conn.Query(ctx,
		"SELECT DISTINCT partition_id FROM "+parts+" WHERE database = ? AND table = ? AND active",
		e.database, table)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var dropped []string
	for _, id := range ids {
		if !dayPartition.MatchString(id) || id >= cutoff {
			continue
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION ID '%s'", e.database, table, e.schema.OnCluster(), id)
		if err := e.conn.Exec(ctx, q); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", id, err)
		}
		dropped = append(dropped, id)
	}
	return dropped, nil
}

// Run calls RunOnce now and then every interval until ctx ends. Failures are
// logged and retried at the next tick.
func (e *Enforcer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		dropped, err := e.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("retention run failed", "err", err)
		case len(dropped) > 0:
			e.log.Info("retention dropped expired partitions", "partitions", dropped, "window_days", e.days)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
