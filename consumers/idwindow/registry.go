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
	read := strings.Join(readColumns, ", ")
	return &Registry{
		conn:   conn,
		counts: NewHistory(conn, database),
		insert: migrations.EventIDs.Insert(database),
		recent: fmt.Sprintf("SELECT %s FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at",
			read, database, migrations.IDsTable),
		// The stored_at of the max-th newest id: one column of one index
		// range, so finding where the newest max ids start reads no ids.
		recentAt: fmt.Sprintf("SELECT stored_at FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? ORDER BY stored_at DESC LIMIT 1 OFFSET ?",
			database, migrations.IDsTable),
		homes: fmt.Sprintf("SELECT workspace_id, partition FROM %s.%s WHERE topic = ? AND stored_at >= ? GROUP BY workspace_id, partition",
			database, migrations.IDsTable),
		movedIDs: fmt.Sprintf("SELECT %s FROM %s.%s WHERE topic = ? AND partition = ? AND stored_at >= ? AND has(?, workspace_id) ORDER BY stored_at DESC LIMIT ?",
			read, database, migrations.IDsTable),
	}
}

// Register records stored events' ids (one INSERT, see
// chconn.InsertBlocks; a retried one may register an id twice, which the
// window's loading ignores).
func (r *Registry) Register(ctx context.Context, ids []StoredID) error {
	block := migrations.EventIDs.NewBlock()
	err := chconn.InsertBlocks(ctx, r.conn, r.insert, len(ids), func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, migrations.EventIDs.InsertColumns(), block.Columns(ids[lo:hi])...)
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
	out, err := scanIDs(rows, topic, partition)
	if err != nil {
		return nil, fmt.Errorf("read recent ids: %w", err)
	}
	return out, nil
}

// readColumns are the registry's columns a read returns, scanned by
// scanIDs; the query's topic and partition fill the others.
var readColumns = []string{"workspace_id", "id", "timestamp_ns", "stored_at"}

// scanIDs reads the rows of a query for readColumns from topic's
// partition part, and closes them.
func scanIDs(rows driver.Rows, topic string, part int32) ([]StoredID, error) {
	defer rows.Close()
	var out []StoredID
	s := StoredID{Topic: topic, Partition: part}
	dest := migrations.EventIDs.Pointers(&s, readColumns)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
