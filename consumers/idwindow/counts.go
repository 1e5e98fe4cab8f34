package idwindow

// The partition counts the consumers have seen, kept in ClickHouse
// (migrations.PartitionCounts) so that every writer and forwarder,
// whenever it starts, knows which counts the topic had before (see
// consumers/handover).

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Count is one partition count of a topic and when a consumer first
// noticed the topic change to it.
type Count struct {
	Partitions int
	NoticedAt  time.Time
}

// Conn is what History needs of a ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// History reads and records a topic's partition counts. It is safe for
// concurrent use when conn is.
type History struct {
	conn           Conn
	insert, counts string
}

// NewHistory returns the history kept in database.
func NewHistory(conn Conn, database string) *History {
	return &History{
		conn:   conn,
		insert: migrations.PartitionCounts.Insert(database),
		counts: fmt.Sprintf("SELECT partitions, min(noticed_at) FROM %s.%s WHERE topic = ? GROUP BY partitions ORDER BY partitions",
			database, migrations.PartitionCountsTable),
	}
}

// Observe records that topic has partitions partitions now, when that is
// more than any recorded count, and returns every recorded count, smallest
// (and oldest) first. Partition counts only grow, so a smaller count is a
// stale answer of a broker and is not recorded. Two consumers noticing the
// same count at once both record it, which changes nothing that matters
// (reads take its first time). Cancelling ctx aborts the queries and
// returns their error.
func (h *History) Observe(ctx context.Context, topic string, partitions int, now time.Time) ([]Count, error) {
	counts, err := h.read(ctx, topic)
	if err != nil {
		return nil, err
	}
	if n := len(counts); n > 0 && counts[n-1].Partitions >= partitions {
		return counts, nil
	}
	b, err := h.conn.PrepareBatch(ctx, h.insert)
	if err != nil {
		return nil, fmt.Errorf("record partition count: %w", err)
	}
	row := migrations.PartitionCount{Topic: topic, Partitions: uint32(partitions), NoticedAt: now.UTC().Truncate(time.Second)}
	if err := b.Append(migrations.PartitionCounts.Values(&row)...); err != nil {
		_ = b.Abort()
		return nil, fmt.Errorf("record partition count: %w", err)
	}
	if err := b.Send(); err != nil {
		return nil, fmt.Errorf("record partition count: %w", err)
	}
	return h.read(ctx, topic)
}

func (h *History) read(ctx context.Context, topic string) ([]Count, error) {
	rows, err := h.conn.Query(ctx, h.counts, topic)
	if err != nil {
		return nil, fmt.Errorf("read partition counts: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var (
			n  uint32
			at time.Time
		)
		if err := rows.Scan(&n, &at); err != nil {
			return nil, fmt.Errorf("read partition counts: %w", err)
		}
		out = append(out, Count{Partitions: int(n), NoticedAt: at})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read partition counts: %w", err)
	}
	return out, nil
}
