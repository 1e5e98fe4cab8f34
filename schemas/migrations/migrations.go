// Package migrations holds the versioned ClickHouse schema of the audit trail
// and applies it. Migrations are idempotent: each statement can run again
// without harm, applied versions are recorded in schema_migrations, and two
// services starting at once may both run them.
//
// The DDL adapts to the server: ClickHouse before 19.6 (such as Debian's
// 18.16) has no TTL clause, so there retention is enforced only by the
// retention job in consumers (partition drops and per-workspace deletes)
// and by the read path's time filter; on newer servers the events tables
// also carry a TTL, which from migration 7 on is only a backstop at
// MaxRetentionDays (workspaces have retention policies of their own, see
// retention.go and docs/retention.md).
//
// With Options.Cluster set, the same migrations build the cluster variant:
// every table is created ON CLUSTER as a replicated, deduplicating
// <name>_local table on each node, with a Distributed table under the plain
// name in front of it, sharded by workspace (see createTable). Writers and
// readers use the plain name either way.
//
// Each table is declared once, in a file of its own: events.go (Events,
// Row), registry.go (EventIDs, StoredID), counts.go (PartitionCounts,
// PartitionCount), log.go (Leaves, Hashes, Checkpoints: the integrity
// log), offsets.go (Offsets, StoredOffset: what the writer did with each
// record, read by the sealer); schema_migrations in this file. A declaration (TableDef)
// lists the columns with their type, default and the row field holding
// each; the CREATE column lists, the INSERT statements, the column blocks
// writers send (Block) and the scan targets of readers derive from it.
// The declarations live here, not in a package of their own, because the
// migrations render them: a version's CREATE statement is its table's
// declaration (testdata/ddl.golden pins the text), an added column is one
// of its columns, and every reader and writer of a table already imports
// this package for its name.
package migrations

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Conn is what migrations need of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Version is a ClickHouse server version.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// SupportsTTL reports whether the server knows the table TTL clause (19.6+).
func (v Version) SupportsTTL() bool { return v.AtLeast(19, 6) }

// SupportsAddColumnIfNotExists reports whether the server takes ALTER TABLE
// ... ADD COLUMN IF NOT EXISTS: 18.16 does not; every server from 20.1 on
// does (the exact release between is not pinned down here).
func (v Version) SupportsAddColumnIfNotExists() bool { return v.AtLeast(20, 1) }

var versionPattern = regexp.MustCompile(`^(\d+)\.(\d+)`)

// ParseVersion parses the output of SELECT version(), e.g. "18.16.1" or
// "24.8.4.13".
func ParseVersion(s string) (Version, error) {
	m := versionPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("unrecognised ClickHouse version %q", s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return Version{Major: major, Minor: minor}, nil
}

// ServerVersion asks the server for its version.
func ServerVersion(ctx context.Context, conn MoveConn) (Version, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return Version{}, fmt.Errorf("query server version: %w", err)
	}
	return ParseVersion(s)
}

// Options shape the DDL.
type Options struct {
	// Database holds every table; it is created when missing.
	Database string
	// RetentionDays is the deployment's default retention window, used for
	// the id registry's TTL clause and the analysts' view.
	RetentionDays int
	// Cluster names a cluster of the servers' remote_servers configuration.
	// When set, the schema is created ON CLUSTER: replicated local tables
	// (which need ZooKeeper or ClickHouse Keeper and the macros {shard} and
	// {replica} on every node) behind Distributed tables. Empty means a
	// single server.
	Cluster string
	// Reapply runs every migration's statements again, recorded or not
	// (they are idempotent), and re-sets the TTL.
	Reapply bool
	// UpTo, when not 0, stops Apply after this version: the schema an
	// older release left (tests of the start check use it).
	UpTo uint32
}

// Migration is one versioned step. Statements returns the idempotent DDL for
// a server version.
type Migration struct {
	Version    uint32
	Name       string
	Statements func(o Options, v Version) []string
	// Adds, when set, are the columns this migration adds to existing
	// tables (its Statements are their ALTERs, one per column and table).
	// Apply issues an ALTER only for a column the table lacks: 18.16 has
	// no ADD COLUMN IF NOT EXISTS, and a table created by a later CREATE
	// already has the column.
	Adds []AddedColumn
	// Run, when set, applies the migration in place of running its
	// Statements one by one: for a migration whose steps depend on what
	// the server holds (migration 5 renames a table only once). Its
	// Statements then list every step it may take, for review.
	Run func(ctx context.Context, conn Conn, o Options, v Version) error
}

// AddedColumn is a column a migration adds to Table of an existing schema.
// New schemas get it from the CREATE statement, which carries every column.
type AddedColumn struct {
	Table string
	// Column is the definition, e.g. "sender_producer String DEFAULT ''".
	Column string
}

// Name returns the column's name.
func (c AddedColumn) Name() string {
	name, _, _ := strings.Cut(c.Column, " ")
	return name
}

// All returns every migration in order.
func All() []Migration {
	return []Migration{
		{Version: 1, Name: "create audit_events", Statements: createEvents},
		{Version: 2, Name: "create audit_event_ids", Statements: createEventIDs},
		{Version: 3, Name: "add sender columns", Adds: senderColumns, Statements: func(o Options, v Version) []string {
			return addColumns(o, v, senderColumns)
		}},
		{Version: 4, Name: "create audit_partition_counts", Statements: createPartitionCounts},
		{Version: 5, Name: "events layout", Statements: layoutStatements, Run: moveToLayout},
		{Version: 6, Name: "integrity log", Statements: createLog},
		{Version: 7, Name: "retention policies", Statements: createRetention},
		{Version: 8, Name: "tile notes", Statements: createTileNotes},
		{Version: 9, Name: "offsets record", Statements: createOffsets},
	}
}

// addColumns renders the ALTERs that add columns to existing tables: on a
// cluster to the storage table and to the Distributed table in front of
// it, both ON CLUSTER. Servers that know ADD COLUMN IF NOT EXISTS (not
// 18.16) get it, so an ALTER ON CLUSTER passes nodes that have the column.
func addColumns(o Options, v Version, adds []AddedColumn) []string {
	var out []string
	for _, a := range adds {
		for _, table := range o.alteredTables(a.Table) {
			out = append(out, addColumn(o, v, table, a))
		}
	}
	return out
}

func addColumn(o Options, v Version, table string, a AddedColumn) string {
	ifNotExists := ""
	if v.SupportsAddColumnIfNotExists() {
		ifNotExists = "IF NOT EXISTS "
	}
	return fmt.Sprintf("ALTER TABLE %s.%s%s ADD COLUMN %s%s", o.Database, table, o.OnCluster(), ifNotExists, a.Column)
}

// alteredTables are the tables an ALTER of name's columns goes to: name,
// and on a cluster also its storage table.
func (o Options) alteredTables(name string) []string {
	if o.Cluster == "" {
		return []string{name}
	}
	return []string{o.StorageTable(name), name}
}

// applyAdds runs the ALTERs of m.Adds for the columns this server's
// tables lack.
func applyAdds(ctx context.Context, conn Conn, o Options, v Version, m Migration) error {
	for _, a := range m.Adds {
		for _, table := range o.alteredTables(a.Table) {
			has, err := columnExists(ctx, conn, o.Database, table, a.Name())
			if err != nil {
				return err
			}
			if has {
				continue
			}
			if err := conn.Exec(ctx, addColumn(o, v, table, a)); err != nil {
				return err
			}
		}
	}
	return nil
}

// columnExists reports whether db.table on this server has the column.
func columnExists(ctx context.Context, conn Conn, db, table, column string) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", db, table, column).Scan(&n); err != nil {
		return false, fmt.Errorf("look up column %s.%s: %w", table, column, err)
	}
	return n > 0, nil
}

// schemaMigrations declares the bookkeeping table of the versions
// applied: one row per migration (more when two services record it at
// once).
var schemaMigrations = newTable("schema_migrations",
	column("version", "UInt32", func(m *Migration) *uint32 { return &m.Version }),
	column("name", "String", func(m *Migration) *string { return &m.Name }),
	defaulted[Migration]("applied_at", "DateTime('UTC')", "now()"),
)

// Applied is what Apply did.
type Applied struct {
	Server   Version
	Versions []uint32 // versions applied by this call
}

// Prepare returns the statements that create the database and the
// schema_migrations bookkeeping table. On a cluster every node holds a
// replica of schema_migrations, so a migration recorded through one node
// counts everywhere.
func Prepare(o Options) []string {
	return []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", o.Database, o.OnCluster()),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = %s ORDER BY version`, o.Database, schemaMigrations.Name, o.OnCluster(),
			schemaMigrations.definition(), o.everyNode("MergeTree()", schemaMigrations.Name)),
	}
}

// Apply creates the database and runs every migration not yet recorded, in
// order, then brings the TTL in line with RetentionDays on servers that
// support it. It is safe to call at every service start.
//
// On a cluster, DDL runs ON CLUSTER and waits for every node (up to the
// server's distributed_ddl_task_timeout, 180 s by default), so Apply issues
// none when nothing is pending: a service start does not depend on every
// node being up. Options.Reapply runs everything again, which creates the
// tables on nodes added to the cluster since.
func Apply(ctx context.Context, conn Conn, o Options) (Applied, error) {
	if err := o.validate(); err != nil {
		return Applied{}, err
	}
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		return Applied{}, err
	}
	res := Applied{Server: v}
	stmts := Prepare(o)
	if o.Cluster != "" && !o.Reapply {
		ok, err := tableExists(ctx, conn, o.Database, schemaMigrations.Name)
		if err != nil {
			return res, fmt.Errorf("prepare migrations: %w", err)
		}
		if ok {
			stmts = nil
		}
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return res, fmt.Errorf("prepare migrations: %w", err)
		}
	}
	done, err := appliedVersions(ctx, conn, o.Database)
	if err != nil {
		return res, err
	}
	for _, m := range All() {
		if o.UpTo != 0 && m.Version > o.UpTo {
			break
		}
		if done[m.Version] && !o.Reapply {
			continue
		}
		if m.Run != nil {
			if err := m.Run(ctx, conn, o, v); err != nil {
				return res, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		} else if len(m.Adds) > 0 {
			if err := applyAdds(ctx, conn, o, v, m); err != nil {
				return res, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		} else {
			for _, s := range m.Statements(o, v) {
				if err := conn.Exec(ctx, s); err != nil {
					return res, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
				}
			}
		}
		if done[m.Version] {
			continue
		}
		if err := record(ctx, conn, o.Database, m); err != nil {
			return res, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		res.Versions = append(res.Versions, m.Version)
	}
	if done[5] || slices.Contains(res.Versions, 5) {
		// The analysts' view follows the retention window, as the TTL does.
		if err := ensureAnalystView(ctx, conn, o); err != nil {
			return res, err
		}
	}
	if v.SupportsTTL() {
		if err := applyTTL(ctx, conn, o); err != nil {
			return res, err
		}
	}
	return res, nil
}

// applyTTL sets each table's TTL clause for o.RetentionDays where the
// table lacks it (every one with Reapply).
func applyTTL(ctx context.Context, conn Conn, o Options) error {
	var err error
	for _, t := range ttlTables(o.RetentionDays) {
		set := false
		if !o.Reapply {
			if set, err = tableHas(ctx, conn, o.Database, o.StorageTable(t.table), t.ttl); err != nil {
				return fmt.Errorf("set retention TTL of %s: %w", t.table, err)
			}
		}
		if q := ttlChange(o, t.table, t.ttl, set); q != "" {
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("set retention TTL of %s: %w", t.table, err)
			}
		}
	}
	return nil
}

// ttlTables are the tables with a TTL clause and the clause each has for
// a retention window of days. From migration 7 on, the events and lookup
// tables' TTL is the MaxRetentionDays backstop: a workspace may keep its
// events longer than the deployment's window, and the retention job
// expires each workspace's rows by its policy (consumers/retention). The
// id registry's TTL follows the window: it bounds the writers'
// idempotency window, not what is served.
func ttlTables(days int) []struct{ table, ttl string } {
	out := []struct{ table, ttl string }{{Table, retentionTTL(MaxRetentionDays)}, {IDsTable, registryTTL(days)}}
	for _, l := range Lookups {
		out = append(out, struct{ table, ttl string }{l.Table, retentionTTL(MaxRetentionDays)})
	}
	return out
}

// ttlChange is the ALTER that sets a table's TTL clause, or "" when the
// table already has it: on current servers MODIFY TTL rewrites every part,
// so a service start must not issue it for nothing.
func ttlChange(o Options, table, ttl string, alreadySet bool) string {
	if alreadySet {
		return ""
	}
	return fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY %s", o.Database, o.StorageTable(table), o.OnCluster(), ttl)
}

// tableExists reports whether this server has db.table.
func tableExists(ctx context.Context, conn MoveConn, db, table string) (bool, error) {
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// tableHas reports whether db.table's engine definition on this server
// contains clause (as the server prints it).
//
// On 18.16 reading system.tables fails with "doesn't exist" when a table
// of the database is renamed or dropped meanwhile (as when two services
// apply migration 5 at once); the query is asked again then.
func tableHas(ctx context.Context, conn MoveConn, db, table, clause string) (bool, error) {
	var n uint64
	var err error
	for range 5 {
		err = conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ? AND position(engine_full, ?) > 0", db, table, clause).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "doesn't exist") {
			break
		}
	}
	return n > 0, err
}

// record inserts the migration's row. 18.16 hangs on INSERT ... VALUES sent
// through Exec, so the row goes as a (one-row) native batch.
//
// The batch runs without ctx's cancellation: clickhouse-go closes a batch's
// connection when its context ends, even after Send returned and the
// connection went back to the pool, which breaks the next query.
func record(ctx context.Context, conn Conn, db string, m Migration) error {
	ctx = context.WithoutCancel(ctx)
	batch, err := conn.PrepareBatch(ctx, schemaMigrations.Insert(db))
	if err != nil {
		return err
	}
	if err := batch.Append(schemaMigrations.Values(&m)...); err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}

func appliedVersions(ctx context.Context, conn Conn, db string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.%s", db, schemaMigrations.Name))
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer rows.Close()
	done := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		done[v] = true
	}
	return done, rows.Err()
}
