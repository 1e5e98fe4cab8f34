package writer

// The ClickHouse Sink: rows go to the events table in native inserts, ids
// to the registry the idempotency window is loaded from.

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/chconn"
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
		insert:   migrations.Events.Insert(database),
	}
}

// Insert writes rows in one INSERT (see chconn.InsertBlocks) and returns
// once ClickHouse acknowledged all of them. A failed insert may have stored
// some blocks; the writer retries it with the same rows, and the table's
// ReplacingMergeTree key (workspace_id, timestamp_ns, id) keeps the copies
// invisible to readers. Values go column by column (migrations.Block: one
// slice per column), which avoids the driver's per-row, per-value
// conversion.
func (s *ClickHouseSink) Insert(ctx context.Context, rows []migrations.Row) error {
	block := migrations.Events.NewBlock()
	return chconn.InsertBlocks(ctx, s.conn, s.insert, len(rows), func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, migrations.Events.InsertColumns(), block.Columns(rows[lo:hi])...)
	})
}
