package writer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// ClickHouseSink stores rows in the events table and keeps the id registry
// the writer rebuilds its idempotency window from (Register and Recent of
// the embedded idwindow.Registry). It is safe for concurrent use.
type ClickHouseSink struct {
	*idwindow.Registry
	conn   driver.Conn
	insert string
}

// NewClickHouseSink returns a sink writing to database.audit_events and
// database.audit_event_ids.
func NewClickHouseSink(conn driver.Conn, database string) *ClickHouseSink {
	return &ClickHouseSink{
		Registry: idwindow.NewRegistry(conn, database),
		conn:     conn,
		insert:   fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")),
	}
}

// Insert writes rows in one batch; nothing is written when it fails before
// Send, and a failed Send is retried by the writer with the same rows. Values go column by column (one slice per column), which
// avoids the driver's per-row, per-value conversion.
func (s *ClickHouseSink) Insert(ctx context.Context, rows []migrations.Row) error {
	batch, err := s.conn.PrepareBatch(ctx, s.insert)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	n := len(rows)
	str := func(f func(*migrations.Row) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	i64 := func(f func(*migrations.Row) int64) []int64 {
		out := make([]int64, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	ts := func(f func(*migrations.Row) time.Time) []time.Time {
		out := make([]time.Time, n)
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}
	// In migrations.InsertColumns order.
	cols := []any{
		str(func(r *migrations.Row) string { return r.WorkspaceID }),
		ts(func(r *migrations.Row) time.Time { return r.Timestamp }),
		i64(func(r *migrations.Row) int64 { return r.TimestampNs }),
		str(func(r *migrations.Row) string { return r.ID }),
		str(func(r *migrations.Row) string { return r.Event }),
		str(func(r *migrations.Row) string { return r.Category }),
		str(func(r *migrations.Row) string { return r.ActorType }),
		str(func(r *migrations.Row) string { return r.ActorID }),
		str(func(r *migrations.Row) string { return r.ActorName }),
		str(func(r *migrations.Row) string { return r.ActorEmail }),
		str(func(r *migrations.Row) string { return r.ResourceType }),
		str(func(r *migrations.Row) string { return r.ResourceID }),
		str(func(r *migrations.Row) string { return r.ResourceName }),
		str(func(r *migrations.Row) string { return r.Changes }),
		str(func(r *migrations.Row) string { return r.ContextIP }),
		str(func(r *migrations.Row) string { return r.ContextUserAgent }),
		str(func(r *migrations.Row) string { return r.ContextRequestID }),
		str(func(r *migrations.Row) string { return r.Properties }),
		ts(func(r *migrations.Row) time.Time { return r.ReceivedAt }),
		i64(func(r *migrations.Row) int64 { return r.ReceivedAtNs }),
	}
	if len(cols) != len(migrations.InsertColumns) {
		_ = batch.Abort()
		return fmt.Errorf("insert: %d column slices for %d columns", len(cols), len(migrations.InsertColumns))
	}
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append column %s: %w", migrations.InsertColumns[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows: %w", n, err)
	}
	return nil
}
