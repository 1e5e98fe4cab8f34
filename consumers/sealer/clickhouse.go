package sealer

// The ClickHouse Store: stored rows read back by key, the log's tables read
// at takeover and appended to.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the store needs of a ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// lookupChunk is how many keys one lookup query names: their literals
// stay well under the server's max_query_size (256 KiB by default).
const lookupChunk = 1000

// ClickHouseStore is the Store of a database. It is safe for concurrent
// use.
type ClickHouseStore struct {
	conn Conn
	db   string
}

// NewClickHouseStore returns the store of database's tables.
func NewClickHouseStore(conn Conn, database string) *ClickHouseStore {
	return &ClickHouseStore{conn: conn, db: database}
}

func (s *ClickHouseStore) table(name string) string { return s.db + "." + name }

// Rows implements Store, lookupChunk keys per query.
func (s *ClickHouseStore) Rows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error) {
	out := make(map[Key]migrations.Row, len(keys))
	for lo := 0; lo < len(keys); lo += lookupChunk {
		if err := s.rows(ctx, keys[lo:min(lo+lookupChunk, len(keys))], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *ClickHouseStore) rows(ctx context.Context, keys []Key, out map[Key]migrations.Row) error {
	tuples, args := keyTuples(keys, true)
	first, last := timeRange(keys)
	q := fmt.Sprintf(`SELECT %s FROM %s
WHERE timestamp >= ? AND timestamp <= ? AND (workspace_id, timestamp_ns, id) IN (%s)
LIMIT 1 BY workspace_id, timestamp_ns, id`, strings.Join(migrations.InsertColumns, ", "), s.table(migrations.Table), tuples)
	rows, err := s.conn.Query(ctx, q, append([]any{first, last}, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r migrations.Row
		if err := rows.Scan(migrations.Events.Pointers(&r, migrations.InsertColumns)...); err != nil {
			return err
		}
		r.Timestamp, r.ReceivedAt = r.Timestamp.UTC(), r.ReceivedAt.UTC()
		out[Key{r.WorkspaceID, r.TimestampNs, r.ID}] = r
	}
	return rows.Err()
}

// keyTuples renders keys as the placeholders of an IN list of tuples,
// with or without the workspace id.
func keyTuples(keys []Key, withWorkspace bool) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 3*len(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		if withWorkspace {
			b.WriteString("(?, ?, ?)")
			args = append(args, k.WorkspaceID, k.TimestampNs, k.ID)
		} else {
			b.WriteString("(?, ?)")
			args = append(args, k.TimestampNs, k.ID)
		}
	}
	return b.String(), args
}

// timeRange returns the seconds of the keys' earliest and latest
// timestamps, which select the events table's partitions.
func timeRange(keys []Key) (time.Time, time.Time) {
	lo, hi := keys[0].TimestampNs, keys[0].TimestampNs
	for _, k := range keys[1:] {
		lo, hi = min(lo, k.TimestampNs), max(hi, k.TimestampNs)
	}
	return time.Unix(0, lo).UTC().Truncate(time.Second), time.Unix(0, hi).UTC().Truncate(time.Second)
}

// HasLeaves implements Store. The leaves' day partitions are those of the
// keys' timestamps, so the lookup reads only the workspace's leaves of
// those days.
func (s *ClickHouseStore) HasLeaves(ctx context.Context, ws string, keys []Key) (map[Key]bool, error) {
	out := map[Key]bool{}
	for lo := 0; lo < len(keys); lo += lookupChunk {
		chunk := keys[lo:min(lo+lookupChunk, len(keys))]
		tuples, args := keyTuples(chunk, false)
		ts := make([]string, len(chunk))
		for i, k := range chunk {
			ts[i] = fmt.Sprint(k.TimestampNs)
		}
		q := fmt.Sprintf(`SELECT DISTINCT timestamp_ns, id FROM %s
WHERE workspace_id = ? AND timestamp_ns IN (%s) AND (timestamp_ns, id) IN (%s)`, s.table(migrations.LeavesTable), strings.Join(ts, ", "), tuples)
		rows, err := s.conn.Query(ctx, q, append([]any{ws}, args...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			k := Key{WorkspaceID: ws}
			if err := rows.Scan(&k.TimestampNs, &k.ID); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Append implements Store: the stored hashes in one insert, then the
// leaves in one insert (see docs/integrity.md for why in that order). The
// inserts run without ctx's cancellation (clickhouse-go closes a batch's
// connection when its context ends, even after Send returned).
func (s *ClickHouseStore) Append(ctx context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error {
	ctx = context.WithoutCancel(ctx)
	if err := insert(ctx, s.conn, migrations.Hashes.Insert(s.db), hashes, migrations.Hashes.Values); err != nil {
		return fmt.Errorf("insert stored hashes: %w", err)
	}
	if err := insert(ctx, s.conn, migrations.Leaves.Insert(s.db), leaves, migrations.Leaves.Values); err != nil {
		return fmt.Errorf("insert leaves: %w", err)
	}
	return nil
}

// SaveCheckpoint stores a signed checkpoint.
func (s *ClickHouseStore) SaveCheckpoint(ctx context.Context, cp migrations.Checkpoint) error {
	if err := insert(context.WithoutCancel(ctx), s.conn, migrations.Checkpoints.Insert(s.db), []migrations.Checkpoint{cp}, migrations.Checkpoints.Values); err != nil {
		return fmt.Errorf("insert checkpoint: %w", err)
	}
	return nil
}

func insert[R any](ctx context.Context, conn Conn, query string, rows []R, values func(*R) []any) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i := range rows {
		if err := batch.Append(values(&rows[i])...); err != nil {
			_ = batch.Abort()
			return err
		}
	}
	return batch.Send()
}

// hashes reads a workspace's stored hashes by index (unmerged copies are
// equal); an index that is not stored is absent.
func (s *ClickHouseStore) hashes(ctx context.Context, ws string, where string, args ...any) (map[int64]tlog.Hash, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT hash_index, any(hash) FROM %s WHERE workspace_id = ? AND %s GROUP BY hash_index",
		s.table(migrations.HashesTable), where), append([]any{ws}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]tlog.Hash{}
	for rows.Next() {
		var (
			x uint64
			h string
		)
		if err := rows.Scan(&x, &h); err != nil {
			return nil, err
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d of %s has %d bytes", x, ws, len(h))
		}
		out[int64(x)] = tlog.Hash([]byte(h))
	}
	return out, rows.Err()
}

// ReadHashes returns a tlog.HashReader of a workspace's stored hashes,
// for checks and tools.
func (s *ClickHouseStore) ReadHashes(ctx context.Context, ws string) tlog.HashReaderFunc {
	return func(indexes []int64) ([]tlog.Hash, error) {
		if len(indexes) == 0 {
			return nil, nil
		}
		got, err := s.hashes(ctx, ws, "hash_index IN ("+joinInts(indexes)+")")
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := got[x]
			if !ok {
				return nil, fmt.Errorf("stored hash %d of %s is missing", x, ws)
			}
			out[i] = h
		}
		return out, nil
	}
}

func joinInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
