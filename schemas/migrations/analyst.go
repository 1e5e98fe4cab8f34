package migrations

// The analysts' view: what the API serves, for SQL.

import (
	"context"
	"fmt"
	"strings"
)

// AnalystView is the view analysts query instead of the events table: it
// serves exactly what the API serves, each event once (FINAL collapses the
// copies of a replayed event that merges have not removed yet), only
// inside the retention window (rows past it that retention has not
// dropped yet are hidden), in flat columns a BI tool reads as they are.
// docs/analysts.md has the cookbook; the read-only analyst user of
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

// analystWindow is the view's window condition for a retention of days,
// as the server prints it back in system.tables.create_table_query.
func analystWindow(days int) string {
	return fmt.Sprintf("(timestamp >= (now() - toIntervalDay(%d))) AND (timestamp_ns >= ((toInt64(now()) - %d) * 1000000000))", days, days*86400)
}

// createAnalystView creates AnalystView for the retention window of o.
func createAnalystView(o Options) string {
	return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s.%s%s AS SELECT %s FROM %s.%s FINAL WHERE %s",
		o.Database, AnalystView, o.OnCluster(), analystColumns, o.Database, Table, analystWindow(o.RetentionDays))
}

// ensureAnalystView creates AnalystView, or replaces it when it was made
// for another retention window (a view cannot be altered on 18.16: it is
// dropped and created again, so for a moment analysts find no view).
func ensureAnalystView(ctx context.Context, conn Conn, o Options) error {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ? AND position(create_table_query, ?) > 0",
		o.Database, AnalystView, analystWindow(o.RetentionDays)).Scan(&n); err != nil {
		return fmt.Errorf("look up %s: %w", AnalystView, err)
	}
	if n > 0 {
		return nil
	}
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, AnalystView, o.OnCluster())); err != nil {
		return fmt.Errorf("replace %s: %w", AnalystView, err)
	}
	if err := conn.Exec(ctx, createAnalystView(o)); err != nil {
		return fmt.Errorf("create %s: %w", AnalystView, err)
	}
	return nil
}
