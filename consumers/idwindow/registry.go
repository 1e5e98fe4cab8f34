package idwindow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Registry is the id registry table (audit_event_ids): the writer records
// the ids it stored in it, and a consumer assigned a partition loads the
// partition's newest ids from it. It is safe for concurrent use.
type Registry struct {
	conn             driver.Conn
	insert           string
	recent, recentAt string
	homes, movedIDs  string // see Moved
	counts           *History
}

// NewRegistry returns the registry in database.audit_event_ids.
func NewRegistry(conn driver.Conn, database string) *Registry {
	return &Registry{
		conn:   conn,
		counts: NewHistory(conn, database),
		insert: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.IDsTable, strings.Join(migrations.IDColumns, ", ")),
		recent: fmt.Sprintf("SELECT workspace_id, id, timestamp_ns, stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at",
			database, migrations.IDsTable),
		// The stored_at of the max-th newest id: one column of one index
		// range, so finding where the newest max ids start reads no ids.
		recentAt: fmt.Sprintf("SELECT stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at DESC LIMIT 1 OFFSET ?",
			database, migrations.IDsTable),
		homes: fmt.Sprintf("SELECT workspace_id, partition FROM %s.%s WHERE topic = ? AND stored_at >= ? GROUP BY workspace_id, partition",
			database, migrations.IDsTable),
		movedIDs: fmt.Sprintf("SELECT workspace_id, id, timestamp_ns, stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? AND has(?, workspace_id) ORDER BY stored_at DESC LIMIT ?",
			database, migrations.IDsTable),
	}
}

// Register records stored events' ids (one INSERT, see
// chconn.InsertBlocks; a retried one may register an id twice, which the
// window's loading ignores).
func (r *Registry) Register(ctx context.Context, ids []StoredID) error {
	var (
		topic, ws, id []string
		part          []uint32
		at            []time.Time
		ts            []int64
	)
	err := chconn.InsertBlocks(ctx, r.conn, r.insert, len(ids), func(b driver.Batch, lo, hi int) error {
		topic, part, at, ws, id, ts = topic[:0], part[:0], at[:0], ws[:0], id[:0], ts[:0]
		for _, s := range ids[lo:hi] {
			topic, part, at = append(topic, s.Topic), append(part, uint32(s.Partition)), append(at, s.StoredAt)
			ws, id, ts = append(ws, s.WorkspaceID), append(id, s.ID), append(ts, s.TimestampNs)
		}
		return chconn.AppendColumns(b, migrations.IDColumns, topic, part, at, ws, id, ts)
	})
	if err != nil {
		return fmt.Errorf("register ids: %w", err)
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
