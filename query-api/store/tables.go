package store

// Which tables a read uses: the events table (with the old-layout table
// while migration 5 moves it) and the lookup tables.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// source returns the table expression a read of whole events uses, and
// whether the lookup tables hold every event. While an old-layout events
// table exists (migrations.LegacyTable, being moved into the events table
// a day at a time) reads go to both through merge(), where a day being
// copied shows once (copies collapse as any replay), and filtered pages do
// not use the lookup tables, which hold only what was moved. Once the old
// table is gone it never comes back, so the store stops asking.
func (s *Store) source(ctx context.Context) (string, bool, error) {
	if s.moved.Load() {
		return s.table, true, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.database, migrations.LegacyTable)
	if err != nil {
		return "", false, fmt.Errorf("look up %s: %w", migrations.LegacyTable, err)
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return "", false, fmt.Errorf("look up %s: %w", migrations.LegacyTable, err)
		}
	}
	if err := rows.Err(); err != nil {
		return "", false, fmt.Errorf("look up %s: %w", migrations.LegacyTable, err)
	}
	if n == 0 {
		s.moved.Store(true)
		return s.table, true, nil
	}
	return fmt.Sprintf("merge('%s', '^(%s|%s)$')", s.database, migrations.Table, migrations.LegacyTable), false, nil
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
