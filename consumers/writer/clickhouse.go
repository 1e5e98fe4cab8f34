package writer

// The ClickHouse Sink: rows go to the events table in native inserts, ids
// to the registry the idempotency window is loaded from.

import (
	"context"
	"fmt"
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
	conn     driver.Conn
	insert   string
	kept     string // the long-term table's insert (KeepLate)
	offsets  string // the offsets record's insert
	keepPast time.Duration
	now      func() time.Time
}

// NewClickHouseSink returns a sink writing to database.audit_events and
// database.audit_event_ids.
func NewClickHouseSink(conn driver.Conn, database string) *ClickHouseSink {
	return &ClickHouseSink{
		Registry: idwindow.NewRegistry(conn, database),
		conn:     conn,
		insert:   migrations.Events.Insert(database),
		kept:     migrations.KeptInsert(database),
		offsets:  migrations.Offsets.Insert(database),
	}
}

// KeepLate makes s also store in the long-term table (audit_events_kept)
// every row older than days (the deployment's window) at now: the writer
// stores such rows only when their workspace's policy keeps them (a late
// event of a held or longer-kept workspace), and the retention job may
// drop their week of the events table at any time; in the long-term
// table no drop can lose them (readers collapse the two copies). It
// returns s and must be called before s is used.
func (s *ClickHouseSink) KeepLate(days int, now func() time.Time) *ClickHouseSink {
	s.keepPast, s.now = time.Duration(days)*24*time.Hour, now
	return s
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
	err := chconn.InsertBlocks(ctx, s.conn, s.insert, len(rows), func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, migrations.Events.InsertColumns(), block.Columns(rows[lo:hi])...)
	})
	if err != nil || s.now == nil {
		return err
	}
	return s.insertLate(ctx, rows)
}

// insertLate stores the rows older than keepPast in the long-term table
// too (KeepLate). Replays store equal rows, which collapse.
func (s *ClickHouseSink) insertLate(ctx context.Context, rows []migrations.Row) error {
	cutoff := s.now().Add(-s.keepPast)
	var b driver.Batch
	for i := range rows {
		if !rows[i].Timestamp.Before(cutoff) {
			continue
		}
		if b == nil {
			var err error
			if b, err = s.conn.PrepareBatch(context.WithoutCancel(ctx), s.kept); err != nil {
				return fmt.Errorf("insert late kept rows: %w", err)
			}
		}
		if err := b.Append(migrations.KeptValues(&rows[i], false, time.Time{})...); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert late kept rows: %w", err)
		}
	}
	if b == nil {
		return nil
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert late kept rows: %w", err)
	}
	return nil
}

// RecordOffsets writes what the writer did with a batch's records to the
// offsets record (migrations.OffsetsTable) in one INSERT; a retried or
// replayed one records equal rows again, which readers collapse.
func (s *ClickHouseSink) RecordOffsets(ctx context.Context, offsets []migrations.StoredOffset) error {
	block := migrations.Offsets.NewBlock()
	err := chconn.InsertBlocks(ctx, s.conn, s.offsets, len(offsets), func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, migrations.Offsets.InsertColumns(), block.Columns(offsets[lo:hi])...)
	})
	if err != nil {
		return fmt.Errorf("record offsets: %w", err)
	}
	return nil
}
