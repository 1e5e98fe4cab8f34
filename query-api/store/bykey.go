package store

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// RowsByKeys calls fn for the stored row of each key of the workspace
// that the store holds inside the retention window, each once, in no
// particular order. fn must not keep r.
func (s *Store) RowsByKeys(ctx context.Context, workspaceID string, keys []Key, fn func(r *migrations.Row) error) error {
	if len(keys) == 0 {
		return nil
	}
	window, _ := s.span(Filter{})
	sp := span{lo: keys[0].TimestampNs, hi: keys[0].TimestampNs + 1}
	ids := make([]any, 0, len(keys))
	want := make(map[key]bool, len(keys))
	for _, k := range keys {
		sp.lo, sp.hi = min(sp.lo, k.TimestampNs), max(sp.hi, k.TimestampNs+1)
		ids = append(ids, k.ID)
		want[key{k.TimestampNs, k.ID}] = true
	}
	sp.lo = max(sp.lo, window.lo)
	if sp.hi <= sp.lo {
		return nil
	}
	var q query
	q.bounds(workspaceID, sp)
	q.and("id IN ("+placeholders(len(ids))+")", ids...)
	cond, args := q.clauses()
	sql := fmt.Sprintf("SELECT %s FROM %s\n%s\nLIMIT 1 BY timestamp_ns, id", selectColumns, s.table, cond)
	return s.each(ctx, sql, args, func(r *migrations.Row) error {
		if !want[key{r.TimestampNs, r.ID}] {
			return nil
		}
		return fn(r)
	})
}

// Count returns how many distinct events match f in the retention window.
func (s *Store) Count(ctx context.Context, f Filter) (uint64, error) {
	sp, ok := s.span(f)
	if !ok {
		return 0, nil
	}
	var q query
	q.bounds(f.WorkspaceID, sp)
	q.filters(f)
	cond, args := q.clauses()
	sql := fmt.Sprintf("SELECT count() FROM (SELECT timestamp_ns, id FROM %s\n%s\nLIMIT 1 BY timestamp_ns, id)", s.table, cond)
	var n uint64
	err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error { return scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}
