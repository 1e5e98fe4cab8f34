package store

// Which tables a read uses: the events table (with the old-layout table
// while migration 5 moves it) and the lookup tables.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// source returns the table expression a read of whole events uses, and
// whether the lookup tables hold every event.
//
// Until migration 5 is recorded and its old events table is gone, reads go
// through merge() to audit_events and to the tables the old rows may sit
// in meanwhile: migrations.LegacyTable (being moved a day at a time) and
// audit_events_v5 (the old table between EXCHANGE and RENAME on current
// servers; before the swap, the new empty table). A day being copied shows
// once (copies collapse as any replay). Filtered pages then do not use the
// lookup tables, which hold only what was moved. Once migration 5 is
// recorded and both are gone, they never come back, so the store stops
// asking.
func (s *Store) source(ctx context.Context) (string, bool, error) {
	if s.moved.Load() {
		return s.table, true, nil
	}
	var others, layout uint64
	err := s.queryRow(ctx, []any{&others}, "SELECT count() FROM system.tables WHERE database = ? AND name IN (?, ?)",
		s.database, migrations.LegacyTable, migrations.NextTable)
	if err == nil && others == 0 {
		err = s.queryRow(ctx, []any{&layout}, fmt.Sprintf("SELECT count() FROM %s.schema_migrations WHERE version = 5", s.database))
	}
	if err != nil {
		return "", false, fmt.Errorf("look up the events layout: %w", err)
	}
	if others == 0 && layout > 0 {
		s.moved.Store(true)
		return s.table, true, nil
	}
	return fmt.Sprintf("merge('%s', '^(%s|%s|%s)$')", s.database, migrations.Table, migrations.LegacyTable, migrations.NextTable), false, nil
}

// queryRow runs a query that returns one row and scans it into dest.
func (s *Store) queryRow(ctx context.Context, dest []any, sql string, args ...any) error {
	return chconn.QueryOne(ctx, s.conn, dest, sql, args...)
}

// lookupFor returns the lookup table that finds the keys of a page of f
// alone: f filters by exactly one of event, actor_id and resource_id, and
// by nothing else but the workspace and time, which every lookup table
// holds. ok is false for any other filter, whose page keys come from the
// events table.
func (s *Store) lookupFor(f Filter) (table string, ok bool) {
	var cols []string
	if len(f.Events) > 0 {
		cols = append(cols, "event")
	}
	if f.ActorID != "" {
		cols = append(cols, "actor_id")
	}
	if f.ResourceID != "" {
		cols = append(cols, "resource_id")
	}
	if len(cols) != 1 || f.Category != "" || f.ActorType != "" || f.ResourceType != "" || len(f.Search) > 0 {
		return "", false
	}
	for _, l := range migrations.Lookups {
		if l.Column == cols[0] {
			return s.database + "." + l.Table, true
		}
	}
	return "", false
}
