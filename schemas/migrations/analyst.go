package migrations

// The analysts' view: what the API serves, for SQL.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AnalystView is the view analysts query instead of the events table: it
// serves exactly what the API serves, each event once (FINAL collapses the
// copies of a replayed event that merges have not removed yet), inside
// each workspace's window (its retention policy: its days, everything
// under a legal hold; rows past it that retention has not deleted yet are
// hidden), the long-term table's events too (kept longer, or restored:
// marked in the column restored), in flat columns a BI tool reads as they
// are. docs/analysts.md has the cookbook; the read-only analyst user of
// deploy/clickhouse may read only this database.
const AnalystView = "analyst_events"

// analystColumns are the columns of AnalystView: every column of the
// events table but inserted_at, which is the writer's business.
var analystColumns = strings.Join([]string{
	"workspace_id", "timestamp", "timestamp_ns", "id", "event", "category",
	"actor_type", "actor_id", "actor_name", "actor_email",
	"resource_type", "resource_id", "resource_name", "changes",
	"context_ip", "context_user_agent", "context_request_id", "properties",
	"received_at", "received_at_ns", "sender_credential_id", "sender_producer",
}, ", ")

// analystWindow is the deployment's window condition for a retention of
// days, as the server prints it back in system.tables.create_table_query.
func analystWindow(days int) string {
	return fmt.Sprintf("(timestamp >= (now() - toIntervalDay(%d))) AND (timestamp_ns >= ((toInt64(now()) - %d) * 1000000000))", days, days*86400)
}

// analystPolicies marks the view made with each workspace's policy (in
// system.tables.create_table_query): a view without it, made for the
// deployment's window only, is replaced.
const analystPolicies = "retention_hold"

// createWindowView creates AnalystView over the events table inside the
// deployment's window of o: the view of a deployment without the
// retention tables yet (migration 5, before migration 7).
func createWindowView(o Options) string {
	return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s%s AS SELECT %s FROM %s.%s FINAL WHERE %s",
		o.Database, AnalystView, o.OnCluster(), analystColumns, o.Database, Table, analystWindow(o.RetentionDays))
}

// createAnalystView creates AnalystView for the deployment's window of o
// and each workspace's policy (migration 7's tables). Its rows are the events table's inside that window and the long-term
// table's, each event once: a long-term row older than the window is in no
// events-table row the view reads, and a younger one (a held workspace's
// rows copied out of a queued delete's way, a restored event) is read
// only when the events table does not hold it. Each row is then kept when
// its workspace's policy in force (RetentionTable's newest version) keeps
// it, as the API's store reads: under a hold, within its days (the
// deployment's when it has none), or restored and before its kept_until
// day. The subqueries are GLOBAL: on a cluster both tables are
// Distributed, and a subquery on one inside a query on the other is
// refused (distributed_product_mode 'deny').
func createAnalystView(o Options) string {
	cut := fmt.Sprintf("((toInt64(now()) - %d) * 1000000000)", o.RetentionDays*86400)
	events, kept := o.Database+"."+Table, o.Database+"."+KeptTable
	return fmt.Sprintf(`CREATE VIEW IF NOT EXISTS %s.%s%s AS SELECT %s, restored FROM (
SELECT %s, toUInt8(0) AS restored, toDate(0) AS kept_until FROM %s FINAL WHERE %s
UNION ALL
SELECT %s, restored, kept_until FROM %s FINAL
WHERE timestamp_ns < %s OR (workspace_id, timestamp_ns, id) GLOBAL NOT IN (SELECT workspace_id, timestamp_ns, id FROM %s
WHERE timestamp_ns GLOBAL IN (SELECT timestamp_ns FROM %s WHERE timestamp_ns >= %s))
) AS e ANY LEFT JOIN (SELECT workspace_id, argMax(days, version) AS retention_days, argMax(hold, version) AS %s
FROM %s.%s GROUP BY workspace_id) AS p USING workspace_id
WHERE %s = 1 OR timestamp_ns >= ((toInt64(now()) - if(retention_days = 0, %d, toInt64(retention_days)) * 86400) * 1000000000)
OR (restored = 1 AND kept_until > today())`,
		o.Database, AnalystView, o.OnCluster(), analystColumns,
		analystColumns, events, analystWindow(o.RetentionDays),
		analystColumns, kept, cut, events, kept, cut, analystPolicies,
		o.Database, RetentionTable, analystPolicies, o.RetentionDays)
}

// ensureAnalystView creates AnalystView, or replaces it when it was made
// for another retention window, or without the policies once the
// retention tables (migration 7) exist (a view cannot be altered on 18.16:
// it is dropped and created again, so for a moment analysts find no view).
func ensureAnalystView(ctx context.Context, conn Conn, o Options) error {
	// Services starting at once migrate at once: one replacing the view
	// while another looks it up makes 18.16's system.tables fail the
	// lookup (UNKNOWN_TABLE), and both converge on the same view, so a
	// failed attempt is made again.
	var err error
	for attempt := range analystViewAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		if err = replaceAnalystView(ctx, conn, o); err == nil {
			return nil
		}
	}
	return err
}

// analystViewAttempts bounds ensureAnalystView's attempts.
const analystViewAttempts = 5

// replaceAnalystView is one attempt of ensureAnalystView.
func replaceAnalystView(ctx context.Context, conn Conn, o Options) error {
	var retention uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN (?, ?)",
		o.Database, KeptTable, RetentionTable).Scan(&retention); err != nil {
		return fmt.Errorf("look up the retention tables: %w", err)
	}
	create, marker := createWindowView(o), analystWindow(o.RetentionDays)
	if retention == 2 {
		create, marker = createAnalystView(o), analystPolicies
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ? AND position(create_table_query, ?) > 0 AND position(create_table_query, ?) > 0",
		o.Database, AnalystView, analystWindow(o.RetentionDays), marker).Scan(&n); err != nil {
		return fmt.Errorf("look up %s: %w", AnalystView, err)
	}
	if n > 0 {
		return nil
	}
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, AnalystView, o.OnCluster())); err != nil {
		return fmt.Errorf("replace %s: %w", AnalystView, err)
	}
	if err := conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("create %s: %w", AnalystView, err)
	}
	return nil
}
