package migrations

// Migration 5, "events layout": the events table in weekly partitions and
// the lookup tables beside it that filtered pages read first.

import (
	"fmt"
	"strings"
)

// The events table's names during and around migration 5.
const (
	// LegacyTable is the events table of the layout before migration 5
	// (day partitions) while its rows are moved into Table by MoveLegacy;
	// it is dropped when empty. Readers read it too while it exists.
	LegacyTable = "audit_events_v4"
	// NextTable is the new events table between its creation and the
	// swap that makes it Table (and, on current servers, the old one
	// between EXCHANGE and the RENAME to LegacyTable). Readers read it
	// too while migration 5 is under way.
	NextTable = "audit_events_v5"
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
	return append(out, createWindowView(o))
}

// createNext creates the new events table as NextTable (renamed into
// place by moveToLayout). On a cluster it is the storage table only: the
// Distributed audit_events in front keeps its name and routes to whichever
// table is called audit_events_local.
//
// It has no IF NOT EXISTS: the service that creates it is the one that
// swaps it in (see swap).
func createNext(o Options, v Version) []string {
	next := o.createTable(NextTable, Events.definition(), "ReplacingMergeTree()", eventsClauses(o, v))
	if o.Cluster != "" {
		next = next[:1]
	}
	next[0] = strings.Replace(next[0], "CREATE TABLE IF NOT EXISTS ", "CREATE TABLE ", 1)
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
