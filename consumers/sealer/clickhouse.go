package sealer

// The ClickHouse Store: stored rows read back by key, the log's tables read
// at takeover and appended to.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
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
	// literal makes Rows name the keys in the query text, lookupChunk at
	// a time, instead of sending them as an external table.
	literal bool
}

// NewClickHouseStore returns the store of database's tables. Rows sends
// the keys it looks up as an external table (temporary data sent with the
// query): 18.16 parses a long IN list slowly (10,000 tuples: 3 s), while
// 20,000 keys as external data are matched in under a second.
func NewClickHouseStore(conn Conn, database string) *ClickHouseStore {
	return &ClickHouseStore{conn: conn, db: database}
}

// WithLiteralKeys returns s naming the keys in the query text instead,
// for connections that cannot send external data (internal/chdbtest).
func (s *ClickHouseStore) WithLiteralKeys() *ClickHouseStore {
	c := *s
	c.literal = true
	return &c
}

func (s *ClickHouseStore) table(name string) string { return s.db + "." + name }

// Rows implements Store: one query with the keys as external data, or
// lookupChunk keys per query named in its text (WithLiteralKeys). Of
// unmerged copies of a key it takes the last inserted (as the table's
// merges keep), the latest received_at among copies inserted in the same
// second.
func (s *ClickHouseStore) Rows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error) {
	return s.readRows(ctx, migrations.Table, "", keys)
}

// readRows reads keys' rows from table as Rows does, where cond ("" for
// none) holds too.
func (s *ClickHouseStore) readRows(ctx context.Context, table, cond string, keys []Key) (map[Key]migrations.Row, error) {
	out := make(map[Key]migrations.Row, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	add := func(r migrations.Row) { out[Key{r.WorkspaceID, r.TimestampNs, r.ID}] = r }
	return out, s.eachRow(ctx, table, cond, latestCopy, keys, add)
}

// Copies returns every stored copy of keys (unmerged copies not
// collapsed): the sample and the audit check each, since the copy a read
// serves is not always the one the merges keep (an INSERT may set any
// inserted_at). A key not stored is absent.
func (s *ClickHouseStore) Copies(ctx context.Context, keys []Key) (map[Key][]migrations.Row, error) {
	out := make(map[Key][]migrations.Row, len(keys))
	add := func(r migrations.Row) {
		k := Key{r.WorkspaceID, r.TimestampNs, r.ID}
		out[k] = append(out[k], r)
	}
	return out, s.eachRow(ctx, migrations.Table, "", "", keys, add)
}

// latestCopy orders and limits a read to one copy of each key: the last
// inserted, the latest received_at among copies inserted in the same
// second.
const latestCopy = `
ORDER BY inserted_at DESC, received_at_ns DESC
LIMIT 1 BY workspace_id, timestamp_ns, id`

// eachRow reads keys' rows from table, where cond ("" for none) holds,
// with pick ordering and limiting them ("" for every copy), and calls add
// with each: in one query, or lookupChunk keys per query named in its
// text (WithLiteralKeys).
func (s *ClickHouseStore) eachRow(ctx context.Context, table, cond, pick string, keys []Key, add func(migrations.Row)) error {
	if len(keys) == 0 {
		return nil
	}
	if !s.literal {
		return s.rows(ctx, table, cond, pick, keys, add)
	}
	for lo := 0; lo < len(keys); lo += lookupChunk {
		if err := s.rows(ctx, table, cond, pick, keys[lo:min(lo+lookupChunk, len(keys))], add); err != nil {
			return err
		}
	}
	return nil
}

// keysTable and probesTable are the external tables Rows (and KeptRows,
// KeptLeaves) and Sizes send their keys in.
const (
	keysTable   = "sealer_keys"
	probesTable = "sealer_probes"
)

func (s *ClickHouseStore) rows(ctx context.Context, table, cond, pick string, keys []Key, add func(migrations.Row)) error {
	first, last := timeRange(keys)
	args := []any{first, last}
	set := keysTable
	if s.literal {
		var tuples string
		tuples, args = keyTuples(keys, true)
		args, set = append(args, first, last), "("+tuples+")"
	} else {
		tbl, err := ext.NewTable(keysTable, ext.Column("workspace_id", "String"), ext.Column("timestamp_ns", "Int64"), ext.Column("id", "String"))
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tbl.Append(k.WorkspaceID, k.TimestampNs, k.ID); err != nil {
				return err
			}
		}
		ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
	}
	// The keys filter in PREWHERE: the server reads the key columns of
	// the granules the index leaves, and the other columns (properties,
	// changes: most of a row's bytes) only where a key matched. A round's
	// keys touch a granule in each part for each of their workspaces, so
	// with WHERE the read-back read every column of most of the week's
	// rows; the time range prunes only partitions.
	q := fmt.Sprintf(`SELECT %s FROM %s
PREWHERE (workspace_id, timestamp_ns, id) IN %s
WHERE timestamp >= ? AND timestamp <= ?%s%s`, strings.Join(migrations.InsertColumns, ", "), s.table(table), set, cond, pick)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	into := migrations.Events.Scanner(migrations.InsertColumns)
	for rows.Next() {
		var r migrations.Row
		if err := rows.Scan(into(&r)...); err != nil {
			return err
		}
		r.Timestamp, r.ReceivedAt = r.Timestamp.UTC(), r.ReceivedAt.UTC()
		add(r)
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

// HasLeaves implements Store. It reads the ids of the workspace's leaves
// (no index serves a lookup by id): it runs only for keys older than what
// the sealer holds in memory (backdated events, late resends).
func (s *ClickHouseStore) HasLeaves(ctx context.Context, ws string, keys []Key) (map[Key]bool, error) {
	out := map[Key]bool{}
	for lo := 0; lo < len(keys); lo += lookupChunk {
		chunk := keys[lo:min(lo+lookupChunk, len(keys))]
		args := []any{ws}
		for _, k := range chunk {
			args = append(args, k.ID)
		}
		found := map[string]bool{}
		err := s.each(ctx, "leaves by id", "SELECT DISTINCT id FROM "+s.table(migrations.LeavesTable)+
			" WHERE workspace_id = ? AND id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+")", args,
			func(scan func(...any) error) error {
				var id string
				if err := scan(&id); err != nil {
					return err
				}
				found[id] = true
				return nil
			})
		if err != nil {
			return nil, err
		}
		for _, k := range chunk {
			if found[k.ID] {
				out[k] = true
			}
		}
	}
	return out, nil
}

// Sizes implements Store with point reads: a workspace's stored log has
// size n when its last stored hash (index StoredHashCount(n)-1) is there
// and the first one of leaf n (index StoredHashCount(n)) is not; else its
// size is reported as -1.
func (s *ClickHouseStore) Sizes(ctx context.Context, near map[string]int64) (map[string]int64, error) {
	type probe struct {
		ws string
		x  int64
	}
	var probes []probe
	for ws, n := range near {
		if n > 0 {
			probes = append(probes, probe{ws, tlog.StoredHashCount(n) - 1})
		}
		probes = append(probes, probe{ws, tlog.StoredHashCount(n)})
	}
	found := map[probe]bool{}
	read := func(ctx context.Context, set string, args []any) error {
		return s.each(ctx, "the logs' sizes", "SELECT DISTINCT workspace_id, hash_index FROM "+s.table(migrations.HashesTable)+
			" WHERE (workspace_id, hash_index) IN "+set, args, func(scan func(...any) error) error {
			var (
				p probe
				x uint64
			)
			if err := scan(&p.ws, &x); err != nil {
				return err
			}
			p.x = int64(x)
			found[p] = true
			return nil
		})
	}
	if !s.literal && len(probes) > 0 {
		tbl, err := ext.NewTable(probesTable, ext.Column("workspace_id", "String"), ext.Column("hash_index", "UInt64"))
		if err != nil {
			return nil, err
		}
		for _, p := range probes {
			if err := tbl.Append(p.ws, uint64(p.x)); err != nil {
				return nil, err
			}
		}
		if err := read(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), probesTable, nil); err != nil {
			return nil, err
		}
		probes = nil
	}
	for lo := 0; lo < len(probes); lo += lookupChunk {
		chunk := probes[lo:min(lo+lookupChunk, len(probes))]
		var b strings.Builder
		args := make([]any, 0, 2*len(chunk))
		for i, p := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?)")
			args = append(args, p.ws, uint64(p.x))
		}
		if err := read(ctx, "("+b.String()+")", args); err != nil {
			return nil, err
		}
	}
	out := make(map[string]int64, len(near))
	for ws, n := range near {
		out[ws] = n
		if (n > 0 && !found[probe{ws, tlog.StoredHashCount(n) - 1}]) || found[probe{ws, tlog.StoredHashCount(n)}] {
			out[ws] = -1
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
	if err := insert(ctx, s.conn, s.db, migrations.Hashes, hashes); err != nil {
		return fmt.Errorf("insert stored hashes: %w", err)
	}
	if err := insert(ctx, s.conn, s.db, migrations.Leaves, leaves); err != nil {
		return fmt.Errorf("insert leaves: %w", err)
	}
	return nil
}

// SaveCheckpoints implements Store, in one insert.
func (s *ClickHouseStore) SaveCheckpoints(ctx context.Context, cps []migrations.Checkpoint) error {
	if err := insert(context.WithoutCancel(ctx), s.conn, s.db, migrations.Checkpoints, cps); err != nil {
		return fmt.Errorf("insert checkpoints: %w", err)
	}
	return nil
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
