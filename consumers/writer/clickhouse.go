package writer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// ClickHouseSink stores rows in the events table and keeps the id registry
// the writer rebuilds its idempotency window from. It is safe for
// concurrent use.
type ClickHouseSink struct {
	conn              driver.Conn
	insert, insertIDs string
	recent, recentAt  string
}

// NewClickHouseSink returns a sink writing to database.audit_events and
// database.audit_event_ids.
func NewClickHouseSink(conn driver.Conn, database string) *ClickHouseSink {
	return &ClickHouseSink{
		conn:      conn,
		insert:    fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")),
		insertIDs: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.IDsTable, strings.Join(migrations.IDColumns, ", ")),
		recent: fmt.Sprintf("SELECT workspace_id, id, timestamp_ns, stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at",
			database, migrations.IDsTable),
		// The stored_at of the max-th newest id: one column of one index
		// range, so finding where the newest max ids start reads no ids.
		recentAt: fmt.Sprintf("SELECT stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at DESC LIMIT 1 OFFSET ?",
			database, migrations.IDsTable),
	}
}

// Register records stored events' ids in the registry.
func (s *ClickHouseSink) Register(ctx context.Context, ids []StoredID) error {
	batch, err := s.conn.PrepareBatch(ctx, s.insertIDs)
	if err != nil {
		return fmt.Errorf("prepare id insert: %w", err)
	}
	n := len(ids)
	topic, part, at := make([]string, n), make([]uint32, n), make([]time.Time, n)
	ws, id, ts := make([]string, n), make([]string, n), make([]int64, n)
	for i := range ids {
		topic[i], part[i], at[i] = ids[i].Topic, uint32(ids[i].Partition), ids[i].StoredAt
		ws[i], id[i], ts[i] = ids[i].WorkspaceID, ids[i].ID, ids[i].TimestampNs
	}
	for i, c := range []any{topic, part, at, ws, id, ts} { // migrations.IDColumns order
		if err := batch.Column(i).Append(c); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append id column %s: %w", migrations.IDColumns[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("register %d ids: %w", n, err)
	}
	return nil
}

// Recent returns the ids stored from one partition since a time, oldest
// first: the newest max of them, and any others stored in the same second
// as the oldest of those.
func (s *ClickHouseSink) Recent(ctx context.Context, topic string, partition int32, since time.Time, max int) ([]StoredID, error) {
	since = since.UTC().Truncate(time.Second)
	if max > 0 {
		var at time.Time
		err := s.conn.QueryRow(ctx, s.recentAt, topic, uint32(partition), since, uint64(max-1)).Scan(&at)
		switch {
		case err == nil:
			since = at
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("find the newest %d ids: %w", max, err)
		}
	}
	rows, err := s.conn.Query(ctx, s.recent, topic, uint32(partition), since)
	if err != nil {
		return nil, fmt.Errorf("read recent ids: %w", err)
	}
	defer rows.Close()
	var out []StoredID
	for rows.Next() {
		r := StoredID{Topic: topic, Partition: partition}
		if err := rows.Scan(&r.WorkspaceID, &r.ID, &r.TimestampNs, &r.StoredAt); err != nil {
			return nil, fmt.Errorf("read recent ids: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read recent ids: %w", err)
	}
	return out, nil
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
