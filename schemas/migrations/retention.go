package migrations

// Migration 7, "retention policies": per-workspace retention and legal
// holds, and the long-term tables that keep the rows of workspaces whose
// policy outlives the deployment's window (docs/retention.md).

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxRetentionDays is the longest retention a workspace may have. From
// migration 7 on, the TTL of the events and lookup tables (on servers
// with TTL) is this backstop, not the deployment's window: the retention
// job is the one mechanism that expires rows, per workspace, on every
// server version.
const MaxRetentionDays = 3650

// Names of migration 7's tables.
const (
	// RetentionTable holds the retention policy of each workspace that has
	// one: a row per change, the newest (highest version) in force. A
	// workspace without a row has the deployment's default window and no
	// legal hold.
	RetentionTable = "audit_retention"
	// KeptTable holds the events of workspaces whose policy keeps them
	// past the deployment's window (more days, or a legal hold), copied
	// from the events table before the retention job drops their week,
	// and the events restored from an archive. Readers read it together
	// with the events table and collapse copies by the key.
	KeptTable = "audit_events_kept"
	// KeptLeavesTable holds the integrity log's leaves of the events in
	// KeptTable that the log sealed, copied from LeavesTable before their
	// day partition is dropped.
	KeptLeavesTable = "audit_log_leaves_kept"
)

// Policies declares RetentionTable.
var Policies = newTable(RetentionTable,
	column("workspace_id", "String", func(p *PolicyRow) *string { return &p.WorkspaceID }),
	column("days", "UInt16", func(p *PolicyRow) *uint16 { return &p.Days }),
	column("hold", "UInt8", func(p *PolicyRow) *uint8 { return &p.Hold }),
	column("hold_reason", "String", func(p *PolicyRow) *string { return &p.HoldReason }),
	column("changed_by", "String", func(p *PolicyRow) *string { return &p.ChangedBy }),
	column("changed_at", "DateTime('UTC')", func(p *PolicyRow) *time.Time { return &p.ChangedAt }),
	column("version", "UInt64", func(p *PolicyRow) *uint64 { return &p.Version }),
)

// PolicyRow is a row of RetentionTable: from ChangedAt on, WorkspaceID
// keeps its events Days days, and none expire while Hold is 1. Version
// orders the rows of a workspace (the change's time in nanoseconds).
type PolicyRow struct {
	WorkspaceID string
	Days        uint16
	Hold        uint8
	HoldReason  string
	ChangedBy   string
	ChangedAt   time.Time
	Version     uint64
}

// KeptColumns are the columns KeptTable adds to the events table's.
var KeptColumns = []string{"restored", "kept_until"}

// keptDefinition is KeptTable's column list: the events table's, then
// restored (1 for a row restored from an archive) and kept_until (the
// day a restored row expires; 1970-01-01 for a row that follows its
// workspace's policy).
func keptDefinition() string {
	d := Events.definition()
	return d[:len(d)-2] + ",\n    restored UInt8 DEFAULT 0,\n    kept_until Date DEFAULT toDate(0),\n    " + keptRank + "\n)"
}

// keptRank is KeptTable's version column: of the copies of an event (one
// kept by its policy, one restored from an archive), merges keep the one
// kept longest: a row that follows its policy outranks every restored
// row, and of restored rows the later kept_until wins. A restore thus
// never shortens what a policy keeps.
const keptRank = "keep_rank UInt32 MATERIALIZED if(restored = 1, toUInt32(kept_until), 4294967295)"

// KeptPartition is KeptTable's partition key: a month of the events'
// time, so a long-kept workspace's rows sit in few parts.
const KeptPartition = "toYYYYMM(timestamp)"

// createRetention creates migration 7's tables. On servers with TTL, Apply
// then raises the TTL of the events and lookup tables to MaxRetentionDays
// (ttlTables), once: from then on it finds the clause set.
func createRetention(o Options, _ Version) []string {
	out := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = %s ORDER BY workspace_id",
		o.Database, RetentionTable, o.OnCluster(), Policies.definition(), o.everyNode("ReplacingMergeTree(version)", RetentionTable))}
	out = append(out, o.createTable(KeptTable, keptDefinition(), "ReplacingMergeTree(keep_rank)",
		"PARTITION BY "+KeptPartition+"\nORDER BY (workspace_id, timestamp_ns, id)\nSETTINGS index_granularity = 8192")...)
	out = append(out, o.createTable(KeptLeavesTable, Leaves.definition(), "ReplacingMergeTree()",
		"ORDER BY (workspace_id, leaf_index)")...)
	return out
}

// KeptInsert is the INSERT of rows into database's KeptTable for a native
// batch: the events table's InsertColumns, then restored and kept_until,
// in the order of KeptValues.
func KeptInsert(database string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s, %s)", database, KeptTable, strings.Join(InsertColumns, ", "), strings.Join(KeptColumns, ", "))
}

// KeptLeavesInsert is the INSERT of leaves into database's
// KeptLeavesTable for a native batch of Leaves' InsertColumns (Leaves'
// Values): the sealer's own copy of a late kept event's leaf.
func KeptLeavesInsert(database string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", database, KeptLeavesTable, strings.Join(Leaves.InsertColumns(), ", "))
}

// KeptValues returns a row's values for KeptInsert: restored is 1 for a
// row restored from an archive; keptUntil is the day (UTC) it expires at,
// or the zero time (1970-01-01) for a row that follows its workspace's
// policy.
func KeptValues(r *Row, restored bool, keptUntil time.Time) []any {
	var flag uint8
	if restored {
		flag = 1
	}
	if keptUntil.IsZero() {
		keptUntil = time.Unix(0, 0).UTC()
	}
	return append(r.Values(), flag, keptUntil.UTC())
}

// AssertBackstopTTL sets the events and lookup tables' TTL back to the
// MaxRetentionDays backstop where it differs, on servers with TTL (a
// no-op on others). A binary from before migration 7 sets them to its
// window at every start, which on current servers would delete a
// longer-kept workspace's rows at the next merge: the retention job calls
// this at every run, as Apply does at every start (docs/retention.md,
// upgrading).
func AssertBackstopTTL(ctx context.Context, conn MoveConn, o Options) error {
	v, err := ServerVersion(ctx, conn)
	if err != nil || !v.SupportsTTL() {
		return err
	}
	for _, t := range ttlTables(MaxRetentionDays) {
		if t.table == IDsTable {
			continue
		}
		set, err := tableHas(ctx, conn, o.Database, o.StorageTable(t.table), t.ttl)
		if err != nil {
			return fmt.Errorf("check the TTL of %s: %w", t.table, err)
		}
		if q := ttlChange(o, t.table, t.ttl, set); q != "" {
			if err := conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("restore the TTL backstop of %s: %w", t.table, err)
			}
		}
	}
	return nil
}
