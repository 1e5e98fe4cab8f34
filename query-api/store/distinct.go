package store

// Counting distinct events per key cheaply: rows of merged parts need no
// de-duplication.

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// keyCount is how many distinct events have one key.
type keyCount struct {
	key int64
	n   uint64
}

// settledRetries is how many times distinctCounts asks again when a part
// it counted without de-duplication was merged away meanwhile.
const settledRetries = 3

// distinctCounts counts the distinct events (timestamp_ns, id) of table
// matching q per value of the Int64 expression key, ordered by key.
//
// Copies of an event sit in parts not yet merged (a ReplacingMergeTree
// collapses them when it merges), in the same partition, as their
// timestamps are equal. A settled partition, one active part made by a
// merge (level above 0), holds no copies, so its rows are counted as they
// are; the other rows are de-duplicated (LIMIT 1 BY), which costs a hash
// set of their keys. When direct (table is one MergeTree table, not the
// merge() of the old layout), the settled parts are read from system.parts
// before the count and again after it: a settled part that is no longer
// active afterwards was merged with new rows meanwhile, and the count is
// taken again (then, after settledRetries, de-duplicated in full). A copy
// that lands in a settled partition during the count is in a new part the
// count did not read as settled, and the check sees the partition unsettled.
func (s *Store) distinctCounts(ctx context.Context, table string, direct bool, key string, q query) ([]keyCount, error) {
	for range settledRetries {
		if !direct {
			break
		}
		parts, err := s.settledParts(ctx, table)
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 {
			break
		}
		counts, err := s.countKeys(ctx, table, key, q, parts)
		if err != nil {
			return nil, err
		}
		after, err := s.settledParts(ctx, table)
		if err != nil {
			return nil, err
		}
		if settledStill(parts, after) {
			return counts, nil
		}
	}
	return s.countKeys(ctx, table, key, q, nil)
}

// settledStill reports whether every part of before is in after.
func settledStill(before, after []string) bool {
	in := make(map[string]bool, len(after))
	for _, p := range after {
		in[p] = true
	}
	for _, p := range before {
		if !in[p] {
			return false
		}
	}
	return true
}

// settledParts returns the active parts of table (database.name) that are
// the only active part of their partition and were made by a merge.
func (s *Store) settledParts(ctx context.Context, table string) ([]string, error) {
	db, name, ok := strings.Cut(table, ".")
	if !ok {
		return nil, fmt.Errorf("table %q has no database", table)
	}
	const sql = `SELECT any(name) FROM system.parts
WHERE database = ? AND table = ? AND active
GROUP BY partition_id HAVING count() = 1 AND max(level) > 0`
	var parts []string
	err := s.scanAll(ctx, sql, []any{db, name}, func(scan func(...any) error) error {
		var p string
		if err := scan(&p); err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("settled parts of %s: %w", table, err)
	}
	return parts, nil
}

// countKeys counts the distinct events of table matching q per key: the
// rows of the settled parts as they are, the others de-duplicated.
func (s *Store) countKeys(ctx context.Context, table, key string, q query, settled []string) ([]keyCount, error) {
	cond, args := q.clauses()
	// branch selects the keys of the rows matching q and extra (a further
	// condition, or none).
	branch := func(extra string, dedup bool) string {
		c := cond
		if extra != "" && len(q.where) > 0 {
			c += " AND " + extra
		} else if extra != "" {
			c += "\nWHERE " + extra
		}
		if !dedup {
			return fmt.Sprintf("SELECT %s AS k FROM %s\n%s", key, table, c)
		}
		return fmt.Sprintf("SELECT k FROM (SELECT %s AS k, timestamp_ns, id FROM %s\n%s\nLIMIT 1 BY timestamp_ns, id)", key, table, c)
	}
	sql := branch("", true)
	if len(settled) > 0 {
		in := "_part IN (" + placeholders(len(settled)) + ")"
		sql = branch(in, false) + "\nUNION ALL\n" + branch("NOT "+in, true)
		set := anys(settled)
		args = slices.Concat(args, set, args, set)
	}
	sql = "SELECT k, count() FROM (\n" + sql + "\n) GROUP BY k ORDER BY k"
	var out []keyCount
	err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var c keyCount
		if err := scan(&c.key, &c.n); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}
