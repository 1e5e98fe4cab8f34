package migrations

// Migration 5, "events layout": the events table in weekly partitions and
// the lookup tables beside it that filtered pages read first.

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The events table's names during and around migration 5.
const (
	// LegacyTable is the events table of the layout before migration 5
	// (day partitions) while its rows are moved into Table by MoveLegacy;
	// it is dropped when empty. Readers read it too while it exists.
	LegacyTable = "audit_events_v4"
	// nextTable is the new events table between its creation and the
	// rename that makes it Table.
	nextTable = "audit_events_v5"
)

// WeekPartition is the partition expression of the events table and the
// lookup tables from migration 5 on: a partition holds a week (Monday to
// Sunday, UTC). A 90-day window spans 14 partitions instead of 91, so a
// page that must look at the whole window opens a seventh of the parts;
// retention stays exact on the read side (the window filter) and drops a
// week once all of it left the window.
//
// The partition id is the Monday's day number since 1970-01-01 (5 digits
// until the year 2243), not its YYYYMMDD: the retention enforcer of
// releases before migration 5 drops every 8-digit partition id before its
// cutoff day, which for a week named by its Monday would drop days still
// inside the window. It leaves these ids alone (rolling deploys, a
// rollback).
const WeekPartition = "toUInt32(toMonday(timestamp))"

// Lookup is a narrow table kept by a materialized view from every insert
// into the events table: one row per stored row, holding the workspace,
// one filter column, and the event's key, ordered by (workspace_id,
// Column, timestamp_ns, id). A page filtered by that column reads its keys
// here (a few granules per part, whatever the size of the workspace), then
// fetches the page's rows by key.
type Lookup struct {
	Table  string // e.g. audit_events_by_event
	Column string // the events table's column it is ordered by
}

// View is the materialized view that fills l.
func (l Lookup) View() string { return l.Table + "_mv" }

// Lookups are the lookup tables, in the order a reader prefers them when a
// filter could use several (the most selective column first).
var Lookups = []Lookup{
	{Table: "audit_events_by_resource", Column: "resource_id"},
	{Table: "audit_events_by_actor", Column: "actor_id"},
	{Table: "audit_events_by_event", Column: "event"},
}

// lookupColumns are a lookup table's columns in the order of its CREATE
// and of the view's SELECT.
func (l Lookup) columns() []string {
	return []string{"workspace_id", l.Column, "timestamp", "timestamp_ns", "id"}
}

func (l Lookup) definition() string {
	return fmt.Sprintf("(workspace_id String, %s String, timestamp DateTime('UTC'), timestamp_ns Int64, id String)", l.Column)
}

// layoutStatements are every statement moveToLayout may run, in order.
func layoutStatements(o Options, v Version) []string {
	out := append(createNext(o, v), createLookups(o, v)...)
	out = append(out, createViews(o)...)
	out = append(out, swapStatements(o, v.AtLeast(20, 10))...)
	return append(out, createAnalystView(o))
}

// createNext creates the new events table as nextTable (renamed into
// place by moveToLayout). On a cluster it is the storage table only: the
// Distributed audit_events in front keeps its name and routes to whichever
// table is called audit_events_local.
func createNext(o Options, v Version) []string {
	next := o.createTable(nextTable, Events.definition(), "ReplacingMergeTree()", eventsClauses(o, v))
	if o.Cluster != "" {
		next = next[:1]
	}
	return next
}

// createLookups creates the lookup tables.
func createLookups(o Options, v Version) []string {
	var out []string
	for _, l := range Lookups {
		out = append(out, o.createTable(l.Table, l.definition(), "ReplacingMergeTree()", lookupClauses(o, v, l))...)
	}
	return out
}

// eventsClauses are the events table's clauses from migration 5 on.
func eventsClauses(o Options, v Version) string {
	ttl := ""
	if v.SupportsTTL() {
		ttl = "\n" + retentionTTL(o.RetentionDays)
	}
	return "PARTITION BY " + WeekPartition + `
ORDER BY (workspace_id, timestamp_ns, id)` + ttl + `
SETTINGS index_granularity = 8192`
}

func lookupClauses(o Options, v Version, l Lookup) string {
	ttl := ""
	if v.SupportsTTL() {
		ttl = "\n" + retentionTTL(o.RetentionDays)
	}
	return fmt.Sprintf("PARTITION BY %s\nORDER BY (workspace_id, %s, timestamp_ns, id)%s\nSETTINGS index_granularity = 8192", WeekPartition, l.Column, ttl)
}

// createViews are the views that fill the lookup tables from the events
// table, on a cluster from each node's storage table into its own.
//
// A view follows its source by name, on 18.16 and on current servers
// alike (after EXCHANGE TABLES it fills from whichever table is called
// audit_events; after a RENAME of its source it fills from nothing), so
// the views are created on audit_events before the swap: they fill from
// the old table until the swap (those rows are copied in later, and the
// copies in the lookup tables collapse like any replay), then from the
// new one, with no insert in between that misses them.
func createViews(o Options) []string {
	var out []string
	for _, l := range Lookups {
		cols := strings.Join(l.columns(), ", ")
		out = append(out, fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s AS SELECT %s FROM %s.%s",
			o.Database, l.View(), o.OnCluster(), o.Database, o.StorageTable(l.Table), cols, o.Database, o.StorageTable(Table)))
	}
	return out
}

// moveToLayout runs migration 5 on a server. It is idempotent and resumes
// where a previous run stopped, and ingest goes on throughout (writers
// insert into audit_events, whichever table holds that name):
//
//  1. create the new events table as nextTable and the lookup tables;
//  2. create the views that fill the lookup tables from audit_events;
//  3. unless audit_events already has the new layout, swap the names: the
//     old table becomes LegacyTable, the new one audit_events; an insert
//     under way finishes in the old table first;
//  4. create the analysts' view (AnalystView).
//
// The old rows are moved by MoveLegacy afterwards (the retention enforcer
// calls it), a day at a time, while readers read both tables; the copies
// go through audit_events, so the views fill the lookup tables with them.
//
// On 18.16 an insert that meets the creation of a view may fail (the
// server registers the view before it exists); it writes nothing, and the
// writer retries it as any failed insert.
func moveToLayout(ctx context.Context, conn Conn, o Options, v Version) error {
	weekly, err := hasLayout(ctx, conn, o)
	if err != nil {
		return err
	}
	create := createLookups(o, v)
	if !weekly {
		create = append(createNext(o, v), create...)
	}
	for _, s := range append(create, createViews(o)...) {
		if err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	if !weekly {
		if err := swap(ctx, conn, o, v); err != nil {
			return err
		}
	}
	return ensureAnalystView(ctx, conn, o)
}

// swap puts the new events table in place. When another service applying
// the migration at the same time swapped first, the swap fails and the
// table this one created is dropped (it is empty: nobody writes to that
// name).
func swap(ctx context.Context, conn Conn, o Options, v Version) error {
	exchange, err := canExchange(ctx, conn, o, v)
	if err != nil {
		return err
	}
	if exchange {
		// Before exchanging, the table under the new name must be the new
		// one: after another service's exchange it is the old one.
		next, err := tableHas(ctx, conn, o.Database, o.StorageTable(nextTable), "PARTITION BY "+WeekPartition)
		if err != nil || !next {
			return fmt.Errorf("swap the events tables: %s has not the new layout (%v)", nextTable, err)
		}
	}
	for _, q := range swapStatements(o, exchange) {
		if err = conn.Exec(ctx, q); err != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	if weekly, werr := hasLayout(ctx, conn, o); werr != nil || !weekly || exchange {
		return fmt.Errorf("swap the events tables: %w", err)
	}
	q := fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, o.StorageTable(nextTable), o.OnCluster())
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop the unused %s: %w", nextTable, err)
	}
	return nil
}

// canExchange reports whether the database swaps names with EXCHANGE
// TABLES: an Atomic database (the default from 20.10 on), where renaming
// two tables in one RENAME is not atomic. On 18.16 one RENAME of two
// tables is.
func canExchange(ctx context.Context, conn Conn, o Options, v Version) (bool, error) {
	if !v.AtLeast(20, 10) {
		return false, nil
	}
	var engine string
	if err := conn.QueryRow(ctx, "SELECT engine FROM system.databases WHERE name = ?", o.Database).Scan(&engine); err != nil {
		return false, fmt.Errorf("look up the engine of database %s: %w", o.Database, err)
	}
	return engine == "Atomic", nil
}

// swapStatements put the new events table in place of the old so that an
// insert finds one or the other, never neither: one RENAME of both tables
// (18.16 runs it under a global lock), or on an Atomic database EXCHANGE
// TABLES, after which the old table is renamed away from nextTable.
func swapStatements(o Options, exchange bool) []string {
	if exchange {
		return []string{
			fmt.Sprintf("EXCHANGE TABLES %[1]s.%[2]s AND %[1]s.%[3]s%[4]s", o.Database, o.StorageTable(Table), o.StorageTable(nextTable), o.OnCluster()),
			fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s%[4]s", o.Database, o.StorageTable(nextTable), o.StorageTable(LegacyTable), o.OnCluster()),
		}
	}
	return []string{fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s, %[1]s.%[4]s TO %[1]s.%[2]s%[5]s", o.Database,
		o.StorageTable(Table), o.StorageTable(LegacyTable), o.StorageTable(nextTable), o.OnCluster())}
}

// hasLayout reports whether the events table (the storage table on a
// cluster) already has migration 5's week partitions.
func hasLayout(ctx context.Context, conn Conn, o Options) (bool, error) {
	return tableHas(ctx, conn, o.Database, o.StorageTable(Table), "PARTITION BY "+WeekPartition)
}

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
// INSERT ... SELECT into audit_events, which fills the lookup tables
// through their views, then dropped from LegacyTable; a run stopped
// between the two copies that day again on the next run, and the copies
// collapse like any replay (readers hide them, merges remove them). It
// returns the days moved. It does nothing when LegacyTable does not exist.
func MoveLegacy(ctx context.Context, conn MoveConn, o Options, cutoff string) ([]string, error) {
	exists, err := tableExists(ctx, conn, o.Database, o.StorageTable(LegacyTable))
	if err != nil || !exists {
		return nil, err
	}
	days, err := Partitions(ctx, conn, o, LegacyTable)
	if err != nil {
		return nil, err
	}
	cols := strings.Join(InsertColumns, ", ")
	from := o.Database + "." + LegacyTable
	if o.Cluster != "" {
		from = fmt.Sprintf("cluster('%s', %s, %s)", o.Cluster, o.Database, o.StorageTable(LegacyTable))
	}
	var moved []string
	for _, day := range days {
		if day >= cutoff {
			q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s WHERE toYYYYMMDD(timestamp) = %s", o.Database, Table, cols, cols, from, day)
			if err := conn.Exec(ctx, q); err != nil {
				return moved, fmt.Errorf("copy day %s of %s: %w", day, LegacyTable, err)
			}
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION ID '%s'", o.Database, o.StorageTable(LegacyTable), o.OnCluster(), day)
		if err := conn.Exec(ctx, q); err != nil {
			return moved, fmt.Errorf("drop day %s of %s: %w", day, LegacyTable, err)
		}
		moved = append(moved, day)
	}
	q := fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, o.StorageTable(LegacyTable), o.OnCluster())
	if err := conn.Exec(ctx, q); err != nil {
		return moved, fmt.Errorf("drop %s: %w", LegacyTable, err)
	}
	return moved, nil
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
