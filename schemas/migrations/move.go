package migrations

// Moving the rows of the events table of the layout before migration 5
// into the new one.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MoveConn is what MoveLegacy and Partitions need of a connection.
type MoveConn interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Partitions returns the partition ids of database.table's active parts;
// on a cluster (o.Cluster) of its storage table on every shard.
func Partitions(ctx context.Context, conn MoveConn, o Options, table string) ([]string, error) {
	parts := "system.parts"
	if o.Cluster != "" {
		parts = fmt.Sprintf("cluster('%s', system.parts)", o.Cluster)
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT partition_id FROM "+parts+" WHERE database = ? AND table = ? AND active ORDER BY partition_id DESC",
		o.Database, o.StorageTable(table))
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list partitions of %s: %w", table, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// MoveLegacy moves the rows of LegacyTable into the events table, a day
// partition at a time, newest first, and drops LegacyTable once it is
// empty. A day entirely before cutoff (YYYYMMDD, the oldest day still in
// the retention window) is dropped without copying. Each day is copied by
// INSERT ... SELECT into audit_events (inserted_at kept), which fills the
// lookup tables through their views, then dropped from LegacyTable.
//
// No row is lost to an insert that commits into LegacyTable late (on an
// Atomic database a swap does not wait for an insert that already found
// the old table): a day is dropped only when its newest block number is
// the one seen before its copy, else it is copied again; LegacyTable is
// dropped only when it holds no row. A run stopped between a copy and its
// drop copies that day again on the next run, and the copies collapse
// like any replay (readers hide them, merges remove them); so do the
// copies of two writers moving at once. It returns the days moved. It
// does nothing when LegacyTable does not exist.
func MoveLegacy(ctx context.Context, conn MoveConn, o Options, cutoff string) ([]string, error) {
	exists, err := tableExists(ctx, conn, o.Database, o.StorageTable(LegacyTable))
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, dropStaleFront(ctx, conn, o)
	}
	days, err := Partitions(ctx, conn, o, LegacyTable)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, day := range days {
		if err := moveDay(ctx, conn, o, day, day >= cutoff); err != nil {
			return moved, err
		}
		moved = append(moved, day)
	}
	var left uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s", legacySource(o))).Scan(&left); err != nil {
		if gone, _ := legacyGone(ctx, conn, o); gone {
			return moved, nil // another service finished the move
		}
		return moved, fmt.Errorf("count the rows left in %s: %w", LegacyTable, err)
	}
	if left > 0 {
		return moved, nil // late rows: the next run moves them
	}
	drops := []string{fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, o.StorageTable(LegacyTable), o.OnCluster())}
	if o.Cluster != "" { // and the Distributed table in front (legacyFront)
		drops = append([]string{fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, LegacyTable, o.OnCluster())}, drops...)
	}
	for _, q := range drops {
		if err := conn.Exec(ctx, q); err != nil {
			return moved, fmt.Errorf("drop %s: %w", LegacyTable, err)
		}
	}
	return moved, nil
}

// moveDay copies one day of LegacyTable into the events table (when copy
// is set: the day is inside the window) until no insert committed into
// the day during the copy, then drops it.
func moveDay(ctx context.Context, conn MoveConn, o Options, day string, copy bool) error {
	cols := strings.Join(append(slices.Clone(InsertColumns), "inserted_at"), ", ")
	for attempt := 0; ; attempt++ {
		before, err := newestBlock(ctx, conn, o, day)
		if err != nil {
			return err
		}
		if copy {
			q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s WHERE toYYYYMMDD(timestamp) = %s", o.Database, Table, cols, cols, legacySource(o), day)
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("copy day %s of %s: %w", day, LegacyTable, err)
			}
		}
		after, err := newestBlock(ctx, conn, o, day)
		if err != nil {
			return err
		}
		if after == before {
			break
		}
		if attempt == 10 {
			return fmt.Errorf("move day %s of %s: inserts keep arriving in it", day, LegacyTable)
		}
	}
	q := fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION ID '%s'", o.Database, o.StorageTable(LegacyTable), o.OnCluster(), day)
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop day %s of %s: %w", day, LegacyTable, err)
	}
	return nil
}

// newestBlock returns the highest block number of the day's active parts
// in LegacyTable (over every shard on a cluster): an insert makes it
// higher, a merge does not.
func newestBlock(ctx context.Context, conn MoveConn, o Options, day string) (int64, error) {
	parts := "system.parts"
	if o.Cluster != "" {
		parts = fmt.Sprintf("cluster('%s', system.parts)", o.Cluster)
	}
	var n int64
	q := "SELECT toInt64(max(max_block_number)) FROM " + parts + " WHERE database = ? AND table = ? AND partition_id = ? AND active"
	if err := conn.QueryRow(ctx, q, o.Database, o.StorageTable(LegacyTable), day).Scan(&n); err != nil {
		return 0, fmt.Errorf("look up the parts of day %s of %s: %w", day, LegacyTable, err)
	}
	return n, nil
}

// legacyGone reports whether LegacyTable no longer exists.
func legacyGone(ctx context.Context, conn MoveConn, o Options) (bool, error) {
	exists, err := tableExists(ctx, conn, o.Database, o.StorageTable(LegacyTable))
	return err == nil && !exists, err
}

// legacySource is LegacyTable as a table expression: on a cluster every
// shard's storage table.
func legacySource(o Options) string {
	if o.Cluster != "" {
		return fmt.Sprintf("cluster('%s', %s, %s)", o.Cluster, o.Database, o.StorageTable(LegacyTable))
	}
	return o.Database + "." + LegacyTable
}

// WeekEnd returns the first day after the week partition id (the
// Monday's day number, see WeekPartition), as YYYYMMDD: the partition is
// entirely before it. Any other id is an error.
func WeekEnd(id string) (string, error) {
	if !weekID.MatchString(id) {
		return "", fmt.Errorf("week partition id %q: want the day number of a Monday", id)
	}
	days, _ := strconv.Atoi(id)
	return time.Unix(int64(days)*86400, 0).UTC().AddDate(0, 0, 7).Format("20060102"), nil
}

var weekID = regexp.MustCompile(`^[0-9]{1,6}$`)
