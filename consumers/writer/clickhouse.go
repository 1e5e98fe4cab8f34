package writer

// The ClickHouse Sink: rows go to the events table in native inserts, ids
// to the registry the idempotency window is loaded from.

import (
	"context"
	"fmt"
	"strings"
	"time"

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
		insert:   fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")),
	}
}

// Insert writes rows in one INSERT (see chconn.InsertBlocks) and returns
// once ClickHouse acknowledged all of them. A failed insert may have stored
// some blocks; the writer retries it with the same rows, and the table's
// ReplacingMergeTree key (workspace_id, timestamp_ns, id) keeps the copies
// invisible to readers. Values go column by column (one slice per column),
// which avoids the driver's per-row, per-value conversion.
func (s *ClickHouseSink) Insert(ctx context.Context, rows []migrations.Row) error {
	var cols blockColumns
	return chconn.InsertBlocks(ctx, s.conn, s.insert, len(rows), func(b driver.Batch, lo, hi int) error {
		return cols.appendTo(b, rows[lo:hi])
	})
}

// blockColumns holds one block's values column by column; its slices are
// reused from block to block.
type blockColumns struct {
	str [18][]string
	ts  [2][]time.Time
	i64 [2][]int64
}

// appendTo appends rows to batch, one column slice per column.
func (c *blockColumns) appendTo(batch driver.Batch, rows []migrations.Row) error {
	for i := range c.str {
		c.str[i] = c.str[i][:0]
	}
	for i := range c.ts {
		c.ts[i], c.i64[i] = c.ts[i][:0], c.i64[i][:0]
	}
	for i := range rows {
		r := &rows[i]
		c.ts[0], c.ts[1] = append(c.ts[0], r.Timestamp), append(c.ts[1], r.ReceivedAt)
		c.i64[0], c.i64[1] = append(c.i64[0], r.TimestampNs), append(c.i64[1], r.ReceivedAtNs)
		for j, v := range [18]string{r.WorkspaceID, r.ID, r.Event, r.Category, r.ActorType, r.ActorID, r.ActorName,
			r.ActorEmail, r.ResourceType, r.ResourceID, r.ResourceName, r.Changes, r.ContextIP, r.ContextUserAgent,
			r.ContextRequestID, r.Properties, r.SenderCredentialID, r.SenderProducer} {
			c.str[j] = append(c.str[j], v)
		}
	}
	return chconn.AppendColumns(batch, migrations.InsertColumns, // in that order
		c.str[0], c.ts[0], c.i64[0], c.str[1], c.str[2], c.str[3], c.str[4], c.str[5], c.str[6], c.str[7],
		c.str[8], c.str[9], c.str[10], c.str[11], c.str[12], c.str[13], c.str[14], c.str[15], c.ts[1], c.i64[1], c.str[16], c.str[17])
}
