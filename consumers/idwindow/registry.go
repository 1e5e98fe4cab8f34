package idwindow

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

// Registry is the id registry table (audit_event_ids): the writer records
// the ids it stored in it, and a consumer assigned a partition loads the
// partition's newest ids from it. It is safe for concurrent use.
type Registry struct {
	conn             driver.Conn
	insert           string
	recent, recentAt string
}

// NewRegistry returns the registry in database.audit_event_ids.
func NewRegistry(conn driver.Conn, database string) *Registry {
	return &Registry{
		conn:   conn,
		insert: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.IDsTable, strings.Join(migrations.IDColumns, ", ")),
		recent: fmt.Sprintf("SELECT workspace_id, id, timestamp_ns, stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at",
			database, migrations.IDsTable),
		// The stored_at of the max-th newest id: one column of one index
		// range, so finding where the newest max ids start reads no ids.
		recentAt: fmt.Sprintf("SELECT stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at DESC LIMIT 1 OFFSET ?",
			database, migrations.IDsTable),
	}
}

// Register records stored events' ids.
func (r *Registry) Register(ctx context.Context, ids []StoredID) error {
	batch, err := r.conn.PrepareBatch(ctx, r.insert)
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
// first: the newest max of them (all when max is 0), and any others stored
// in the same second as the oldest of those. Cancelling ctx aborts the
// query and returns its error.
func (r *Registry) Recent(ctx context.Context, topic string, partition int32, since time.Time, max int) ([]StoredID, error) {
	since = since.UTC().Truncate(time.Second)
	if max > 0 {
		var at time.Time
		err := r.conn.QueryRow(ctx, r.recentAt, topic, uint32(partition), since, uint64(max-1)).Scan(&at)
		switch {
		case err == nil:
			since = at
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("find the newest %d ids: %w", max, err)
		}
	}
	rows, err := r.conn.Query(ctx, r.recent, topic, uint32(partition), since)
	if err != nil {
		return nil, fmt.Errorf("read recent ids: %w", err)
	}
	defer rows.Close()
	var out []StoredID
	for rows.Next() {
		s := StoredID{Topic: topic, Partition: partition}
		if err := rows.Scan(&s.WorkspaceID, &s.ID, &s.TimestampNs, &s.StoredAt); err != nil {
			return nil, fmt.Errorf("read recent ids: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read recent ids: %w", err)
	}
	return out, nil
}
