package store

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// RowsByKeys calls fn for the stored row of each key of the workspace
// that the store holds inside the workspace's retention window (or
// restored), each once, in no particular order. fn must not keep r.
func (s *Store) RowsByKeys(ctx context.Context, workspaceID string, keys []Key, fn func(r *migrations.Row) error) error {
	if len(keys) == 0 {
		return nil
	}
	sc, err := s.scope(ctx, Filter{WorkspaceID: workspaceID})
	if err != nil {
		return err
	}
	sp := span{lo: keys[0].TimestampNs, hi: keys[0].TimestampNs + 1}
	ids := make([]any, 0, len(keys))
	want := make(map[key]bool, len(keys))
	for _, k := range keys {
		sp.lo, sp.hi = min(sp.lo, k.TimestampNs), max(sp.hi, k.TimestampNs+1)
		ids = append(ids, k.ID)
		want[key{k.TimestampNs, k.ID}] = true
	}
	bs := s.branches(workspaceID, s.table, sc, sp, func(q *query) { q.and("id IN ("+placeholders(len(ids))+")", ids...) })
	if len(bs) == 0 {
		return nil
	}
	from, args := union(bs, selectColumns, false, "")
	sql := "SELECT * FROM " + from + "\nLIMIT 1 BY timestamp_ns, id"
	return s.each(ctx, sql, args, func(r *migrations.Row) error {
		if !want[key{r.TimestampNs, r.ID}] {
			return nil
		}
		return fn(r)
	})
}

// Count returns how many distinct events match f in the workspace's
// retention window.
func (s *Store) Count(ctx context.Context, f Filter) (uint64, error) {
	sc, err := s.scope(ctx, f)
	if err != nil || sc.empty() {
		return 0, err
	}
	bs := s.branches(f.WorkspaceID, s.table, sc, all, func(q *query) { q.filters(f) })
	if len(bs) == 0 {
		return 0, nil
	}
	from, args := union(bs, "timestamp_ns, id", false, "")
	sql := "SELECT count() FROM (SELECT * FROM " + from + "\nLIMIT 1 BY timestamp_ns, id)"
	var n uint64
	err = s.scanAll(ctx, sql, args, func(scan func(...any) error) error { return scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}
