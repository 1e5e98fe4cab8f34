package writer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// ClickHouseSink stores rows in the events table and keeps the id registry
// that makes an event id stored once per workspace, whatever timestamp it
// is sent again with. It is safe for concurrent use, but the registry check
// is only exact when one caller at a time stores a given workspace's
// events, which the writer guarantees (a workspace is one partition's key,
// and a partition's batches are stored in order by one instance).
type ClickHouseSink struct {
	conn           driver.Conn
	insert, lookup string
	insertIDs      string
}

// NewClickHouseSink returns a sink writing to database.audit_events and
// database.audit_event_ids.
func NewClickHouseSink(conn driver.Conn, database string) *ClickHouseSink {
	return &ClickHouseSink{
		conn:      conn,
		insert:    fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")),
		insertIDs: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.IDsTable, strings.Join(migrations.IDColumns, ", ")),
		lookup: fmt.Sprintf("SELECT workspace_id, id, timestamp_ns FROM %s.%s WHERE (workspace_id, id) IN %s",
			database, migrations.IDsTable, batchIDsTable),
	}
}

// batchIDsTable is the external table carrying a batch's ids to the lookup.
const batchIDsTable = "batch_ids"

// Stored is what one Insert did with its rows.
type Stored struct {
	Inserted int // rows written
	// Replayed rows were already stored with the same timestamp (a replay
	// after a crash, a producer retry): not written again.
	Replayed int
	// Conflicts are rows whose id was stored earlier with another
	// timestamp: the first stored version stays, these are dropped.
	Conflicts int
}

// Insert stores the rows that are new: a row whose (workspace_id, id) is
// already stored, or appears earlier in rows, is left out (see Stored).
// The events go first, then their ids, so a failure in between leaves ids
// unregistered and a retry writes the same rows again, which the table
// collapses. On error the caller retries with the same rows.
func (s *ClickHouseSink) Insert(ctx context.Context, rows []migrations.Row) (Stored, error) {
	fresh, st := firstOfEachID(rows)
	known, err := s.known(ctx, fresh)
	if err != nil {
		return Stored{}, err
	}
	if len(known) > 0 {
		kept := fresh[:0:0]
		for i := range fresh {
			ts, ok := known[idKey(&fresh[i])]
			switch {
			case !ok:
				kept = append(kept, fresh[i])
			case ts == fresh[i].TimestampNs:
				st.Replayed++
			default:
				st.Conflicts++
			}
		}
		fresh = kept
	}
	if len(fresh) == 0 {
		return st, nil
	}
	if err := s.insertEvents(ctx, fresh); err != nil {
		return Stored{}, err
	}
	if err := s.registerIDs(ctx, fresh); err != nil {
		return Stored{}, err
	}
	st.Inserted = len(fresh)
	return st, nil
}

func idKey(r *migrations.Row) string { return r.WorkspaceID + "\x00" + r.ID }

// firstOfEachID keeps the first row of each (workspace_id, id), counting
// later ones as replays (same timestamp) or conflicts.
func firstOfEachID(rows []migrations.Row) ([]migrations.Row, Stored) {
	var st Stored
	first := make(map[string]int64, len(rows))
	out, copied := rows, false
	for i := range rows {
		k := idKey(&rows[i])
		ts, seen := first[k]
		switch {
		case !seen:
			first[k] = rows[i].TimestampNs
			if copied {
				out = append(out, rows[i])
			}
			continue
		case ts == rows[i].TimestampNs:
			st.Replayed++
		default:
			st.Conflicts++
		}
		if !copied { // the first row left out: keep a copy of those before it
			out, copied = append(make([]migrations.Row, 0, len(rows)), rows[:i]...), true
		}
	}
	return out, st
}

// known returns the stored timestamp of every row's id already in the
// registry. The batch's ids travel as an external table; ids never seen
// cost only an index lookup.
func (s *ClickHouseSink) known(ctx context.Context, rows []migrations.Row) (map[string]int64, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	t, err := ext.NewTable(batchIDsTable, ext.Column("workspace_id", column.Type("String")), ext.Column("id", column.Type("String")))
	if err != nil {
		return nil, fmt.Errorf("look up ids: %w", err)
	}
	for i := range rows {
		if err := t.Append(rows[i].WorkspaceID, rows[i].ID); err != nil {
			return nil, fmt.Errorf("look up ids: %w", err)
		}
	}
	res, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(t)), s.lookup)
	if err != nil {
		return nil, fmt.Errorf("look up ids: %w", err)
	}
	defer res.Close()
	var known map[string]int64
	for res.Next() {
		var ws, id string
		var ns int64
		if err := res.Scan(&ws, &id, &ns); err != nil {
			return nil, fmt.Errorf("look up ids: %w", err)
		}
		if known == nil {
			known = map[string]int64{}
		}
		known[ws+"\x00"+id] = ns
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("look up ids: %w", err)
	}
	return known, nil
}

// registerIDs records the stored rows' ids.
func (s *ClickHouseSink) registerIDs(ctx context.Context, rows []migrations.Row) error {
	batch, err := s.conn.PrepareBatch(ctx, s.insertIDs)
	if err != nil {
		return fmt.Errorf("prepare id insert: %w", err)
	}
	n := len(rows)
	ws, ids, ts, ns := make([]string, n), make([]string, n), make([]time.Time, n), make([]int64, n)
	for i := range rows {
		ws[i], ids[i], ts[i], ns[i] = rows[i].WorkspaceID, rows[i].ID, rows[i].Timestamp, rows[i].TimestampNs
	}
	for i, c := range []any{ws, ids, ts, ns} { // migrations.IDColumns order
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

// insertEvents writes rows in one batch; nothing is written when it fails
// before Send. Values go column by column (one slice per column), which
// avoids the driver's per-row, per-value conversion.
func (s *ClickHouseSink) insertEvents(ctx context.Context, rows []migrations.Row) error {
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
