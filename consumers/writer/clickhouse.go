package writer

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// ClickHouseSink inserts rows into the events table with one native batch
// per call. It is safe for concurrent use.
type ClickHouseSink struct {
	conn  driver.Conn
	query string
}

// NewClickHouseSink returns a sink writing to database.audit_events.
func NewClickHouseSink(conn driver.Conn, database string) *ClickHouseSink {
	return &ClickHouseSink{
		conn:  conn,
		query: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")),
	}
}

// Insert writes rows in one batch; nothing is written when it fails before
// Send, and a failed Send is retried by the writer with the same rows.
func (s *ClickHouseSink) Insert(ctx context.Context, rows []migrations.Row) error {
	batch, err := s.conn.PrepareBatch(ctx, s.query)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	for i := range rows {
		if err := batch.Append(rows[i].Values()...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append row %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows: %w", len(rows), err)
	}
	return nil
}
