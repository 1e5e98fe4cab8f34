package store

// Counting parts by slot for the slot cache.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// partSlots returns the counts (partCounts) of the rows of f's workspace
// matching f in each of parts, from the cache or, for those not cached,
// counted in two queries over those parts alone; fills are the counted
// ones, to cache once the parts are known to have been read.
func (s *Store) partSlots(ctx context.Context, table string, f Filter, cond [16]byte, parts []part) (map[string]partCounts, map[slotKey]partCounts, error) {
	counted := map[string]partCounts{}
	var missing []part
	for _, p := range parts {
		if c, ok := s.slots.get(s.slotKey(table, f, cond, p)); ok {
			counted[p.name] = c
			continue
		}
		missing = append(missing, p)
	}
	if len(missing) == 0 {
		return counted, nil, nil
	}
	names := make([]any, len(missing))
	var edges []any // the parts' first and last seconds
	lo, hi := missing[0].lo, missing[0].hi
	for i, p := range missing {
		names[i] = p.name
		edges = append(edges, max(p.lo, 0), max(p.hi, 0))
		lo, hi = min(lo, p.lo), max(hi, p.hi)
	}
	byPart := map[string]*partCounts{}
	for _, p := range missing {
		byPart[p.name] = &partCounts{}
	}
	inParts := func(timeCond string, timeArgs ...any) query {
		var q query
		q.pre("workspace_id = ?", f.WorkspaceID)
		q.pre(timeCond, timeArgs...)
		q.and("_part IN ("+placeholders(len(names))+")", names...)
		q.filters(f)
		return q
	}
	q := inParts("timestamp >= toDateTime(?) AND timestamp <= toDateTime(?)", max(lo, 0), max(hi, 0))
	c, args := q.clauses()
	sql := fmt.Sprintf("SELECT _part, toInt32(intDiv(timestamp_ns, %d)) AS slot, toUInt32(count()),\n  toUInt64(countIf(toInt64(timestamp) != intDiv(timestamp_ns, 1000000000)))\nFROM %s\n%s\nGROUP BY _part, slot ORDER BY _part, slot",
		int64(slotSeconds*1e9), table, c)
	mismatched := false
	err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var name string
		var sc slotCount
		var odd uint64
		if err := scan(&name, &sc.slot, &sc.n, &odd); err != nil {
			return err
		}
		mismatched = mismatched || odd > 0
		if pc := byPart[name]; pc != nil {
			pc.slots = append(pc.slots, sc)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("count parts by slot: %w", err)
	}
	if mismatched {
		return nil, nil, errTimestampMismatch
	}
	q = inParts("timestamp IN ("+strings.TrimSuffix(strings.Repeat("toDateTime(?), ", len(edges)), ", ")+")", edges...)
	c, args = q.clauses()
	sql = fmt.Sprintf("SELECT _part, timestamp_ns, id\nFROM %s\n%s", table, c)
	partOf := map[string]part{}
	for _, p := range missing {
		partOf[p.name] = p
	}
	err = s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var name string
		var k key
		if err := scan(&name, &k.ns, &k.id); err != nil {
			return err
		}
		p, pc := partOf[name], byPart[name]
		if pc == nil {
			return nil
		}
		sec := floorDiv(k.ns, 1e9)
		if sec == p.lo {
			pc.first = append(pc.first, k)
		}
		if sec == p.hi {
			pc.last = append(pc.last, k)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read parts' edges: %w", err)
	}
	fills := make(map[slotKey]partCounts, len(missing))
	for _, p := range missing {
		pc := byPart[p.name]
		pc.slots, pc.first, pc.last = slices.Clip(pc.slots), slices.Clip(pc.first), slices.Clip(pc.last)
		counted[p.name] = *pc
		fills[s.slotKey(table, f, cond, p)] = *pc
	}
	return counted, fills, nil
}

// errTimestampMismatch is partSlots' error when a part holds a row whose
// timestamp is not its timestamp_ns's second: the part's time range then
// does not say which slots its rows lie in, and the histogram is counted
// from rows.
var errTimestampMismatch = errors.New("a row's timestamp is not its timestamp_ns's second")

// slotKey is the cache's key of the rows of p matching f (cond).
func (s *Store) slotKey(table string, f Filter, cond [16]byte, p part) slotKey {
	return slotKey{part: p.id(table), workspace: f.WorkspaceID, cond: cond}
}

// floorDiv is a/b rounded down, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
