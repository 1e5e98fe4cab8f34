package store

// Counting distinct events per key cheaply: rows of merged parts that no
// other part's time range reaches need no de-duplication.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// keyCount is how many distinct events have one key.
type keyCount struct {
	key int64
	n   uint64
}

// settledRetries is how many times distinctCounts asks again when the
// parts changed under a count; then it de-duplicates every row.
const settledRetries = 3

// maxSettledRanges bounds the time ranges a count spells out (the longest
// are kept; the rest are de-duplicated).
const maxSettledRanges = 64

// distinctCounts counts the distinct events (timestamp_ns, id) of table
// matching q per value of the Int64 expression key, ordered by key (see
// distinctGroups).
func (s *Store) distinctCounts(ctx context.Context, table string, direct bool, key string, q query) ([]keyCount, error) {
	var out []keyCount
	err := s.distinctGroups(ctx, table, direct, q, groupCount{
		g:     grouping{sel: key + " AS k", by: "k", tail: "ORDER BY k"},
		reset: func() { out = out[:0] },
		row:   appendKeyCount(&out),
	})
	return out, err
}

// appendKeyCount returns a row function that scans a key and its count
// into *out.
func appendKeyCount(out *[]keyCount) func(scan func(...any) error) error {
	return func(scan func(...any) error) error {
		var c keyCount
		if err := scan(&c.key, &c.n); err != nil {
			return err
		}
		*out = append(*out, c)
		return nil
	}
}

// grouping is what a distinct count groups by: sel is the select list of
// a group (e.g. "event", or an expression "... AS k"), by its GROUP BY
// columns, aggs more aggregates of each group (", argMax(x, t)"), and tail
// orders and limits the groups (by the count: cnt).
type grouping struct {
	sel, by, aggs, tail string
}

// groupCount is one count of distinctGroups: its grouping, and row, called
// with a scanner for each group (the by columns, the outer aggregates,
// then the count as UInt64). A count taken while the parts changed is
// taken again: reset is called before each count, to drop the rows row
// kept of an earlier one.
type groupCount struct {
	g     grouping
	reset func()
	row   func(scan func(...any) error) error
}

// distinctGroups takes each count of counts: the distinct events
// (timestamp_ns, id) of table matching q per group, all over one reading
// of the table's parts.
//
// Copies of an event are rows of equal timestamp in parts a
// ReplacingMergeTree has not merged together (a merge collapses them). So
// the rows of a part made by a merge (level above 0) whose seconds no
// other active part's time range reaches (settled ranges) have no copies
// and are counted as they are; the other rows are de-duplicated
// (uniqExact of the key, a hash set). When direct (table is one MergeTree
// table, not the merge() of the old layout), the parts are read from
// system.parts before the counts and again after them: when a part that
// owned a settled range is gone, or another part reaches into the range,
// the parts changed meanwhile and the counts are taken again. A copy is
// counted in the group of the copy (copies are the same event stored
// again, so in the same group: see docs/reads.md for a resend that
// changed it).
func (s *Store) distinctGroups(ctx context.Context, table string, direct bool, q query, counts ...groupCount) error {
	each := func(settled []secRange) error {
		for _, c := range counts {
			c.reset()
			if err := s.countGroups(ctx, table, c.g, q, settled, c.row); err != nil {
				return err
			}
		}
		return nil
	}
	for range settledRetries {
		if !direct {
			break
		}
		before, err := s.activeParts(ctx, table)
		if err != nil {
			return err
		}
		if err := s.verifyParts(ctx, table, before); err != nil {
			return err
		}
		owned := settledRanges(before)
		if len(owned) == 0 {
			break
		}
		if err := each(coalesce(owned)); err != nil {
			return err
		}
		after, err := s.activeParts(ctx, table)
		if err != nil {
			return err
		}
		if stillSettled(owned, after) {
			return nil
		}
	}
	return each(nil)
}

// part is an active part: its partition, level, time range (seconds,
// inclusive), rows and modification time; distinct is whether it is known
// to hold each key once (made by a merge, or checked).
type part struct {
	name, partition string
	level           uint32
	lo, hi          int64
	rows, bytes     uint64
	modified        int64
	// created is the table's metadata_modification_time: a table dropped
	// and made again has another (unless made again within the second).
	created  int64
	distinct bool
}

// partID names one part's content: parts are immutable, and a name is
// not reused by the table. A table dropped and made again reuses names
// (its blocks are numbered from 1 again), so the table's creation, the
// part's rows, bytes, time range and modification time are part of it
// too, and a table whose names go back (activeParts) is forgotten.
type partID struct {
	table, name string
	rows, bytes uint64
	lo, hi      int64
	modified    int64
	created     int64
}

// id is p's partID in table.
func (p part) id(table string) partID {
	return partID{table: table, name: p.name, rows: p.rows, bytes: p.bytes, lo: p.lo, hi: p.hi, modified: p.modified, created: p.created}
}

// secRange is a range of seconds [lo, hi], owned by a part.
type secRange struct {
	lo, hi int64
	owner  string
}

// activeParts returns the active parts of table (database.name).
func (s *Store) activeParts(ctx context.Context, table string) ([]part, error) {
	db, name, ok := strings.Cut(table, ".")
	if !ok {
		return nil, fmt.Errorf("table %q has no database", table)
	}
	const sql = `SELECT name, partition_id, level, toInt64(min_time), toInt64(max_time), rows, bytes_on_disk, toInt64(modification_time),
  toInt64(ifNull((SELECT any(metadata_modification_time) FROM system.tables WHERE database = ? AND name = ?), toDateTime(0))), max_block_number
FROM system.parts WHERE database = ? AND table = ? AND active`
	var parts []part
	var top int64 // the highest block number
	err := s.scanAll(ctx, sql, []any{db, name, db, name}, func(scan func(...any) error) error {
		var p part
		var block int64
		if err := scan(&p.name, &p.partition, &p.level, &p.lo, &p.hi, &p.rows, &p.bytes, &p.modified, &p.created, &block); err != nil {
			return err
		}
		top = max(top, block)
		_, known := s.distinctParts.Load(p.id(table))
		p.distinct = p.level > 0 || known
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parts of %s: %w", table, err)
	}
	s.remade(table, parts, top)
	// Forget the checked parts of table that are gone (merged or dropped),
	// so the memory stays bounded by the active parts.
	active := make(map[partID]bool, len(parts))
	for _, p := range parts {
		active[p.id(table)] = true
	}
	s.distinctParts.Range(func(k, _ any) bool {
		if id := k.(partID); id.table == table && !active[id] {
			s.distinctParts.Delete(id)
		}
		return true
	})
	return parts, nil
}

// settledRanges returns, for each part known to hold each key once, the
// ranges of its seconds that no other part of its partition reaches. Parts without a
// time range (min and max 0: a table not partitioned by time) settle
// nothing.
func settledRanges(parts []part) []secRange {
	var out []secRange
	for _, p := range parts {
		if !p.distinct || p.hi < p.lo || (p.lo == 0 && p.hi == 0) {
			continue
		}
		var others []secRange
		for _, o := range parts {
			if o.name != p.name && o.partition == p.partition && o.hi >= p.lo && o.lo <= p.hi {
				others = append(others, secRange{lo: o.lo, hi: o.hi})
			}
		}
		slices.SortFunc(others, func(a, b secRange) int { return cmp.Compare(a.lo, b.lo) })
		next := p.lo // the first second not yet known to be reached
		for _, o := range others {
			if o.lo > next {
				out = append(out, secRange{lo: next, hi: o.lo - 1, owner: p.name})
			}
			next = max(next, o.hi+1)
		}
		if next <= p.hi {
			out = append(out, secRange{lo: next, hi: p.hi, owner: p.name})
		}
	}
	return out
}

// maxVerifyRows and maxVerifyParts bound the checks of one count: parts
// not made by a merge are checked for copies (once: parts are immutable)
// when they have at most maxVerifyRows rows, at most maxVerifyParts of them,
// and only those that would settle a range.
const (
	maxVerifyRows  = 2_000_000
	maxVerifyParts = 4
)

// verifyParts checks parts not made by a merge that would settle a range
// if they held each key once (no other part of their partition reaches
// some of their seconds), marks those that do, and remembers them.
func (s *Store) verifyParts(ctx context.Context, table string, parts []part) error {
	candidates := make([]part, len(parts))
	for i, p := range parts {
		candidates[i] = p
		candidates[i].distinct = true
	}
	verified := 0
	for _, r := range settledRanges(candidates) {
		i := slices.IndexFunc(parts, func(p part) bool { return p.name == r.owner })
		p := &parts[i]
		if p.distinct || p.rows > maxVerifyRows || verified == maxVerifyParts {
			continue
		}
		verified++
		var rows, keys uint64
		err := s.queryRow(ctx, []any{&rows, &keys}, "SELECT count(), uniqExact(timestamp_ns, id) FROM "+table+" WHERE _part = ?", p.name)
		if err != nil {
			return fmt.Errorf("check part %s of %s: %w", p.name, table, err)
		}
		// A part merged away meanwhile reads as empty: not marked.
		if rows == p.rows && keys == rows {
			p.distinct = true
			s.distinctParts.Store(p.id(table), true)
		}
	}
	return nil
}

// stillSettled reports whether each range of owned is still settled, by the
// same part, among parts.
func stillSettled(owned []secRange, parts []part) bool {
	now := settledRanges(parts)
	for _, r := range owned {
		if !slices.ContainsFunc(now, func(n secRange) bool { return n.owner == r.owner && n.lo <= r.lo && r.hi <= n.hi }) {
			return false
		}
	}
	return true
}

// coalesce returns the ranges sorted, adjacent ones joined, at most
// maxSettledRanges of them (the longest).
func coalesce(rs []secRange) []secRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b secRange) int { return cmp.Compare(a.lo, b.lo) })
	var out []secRange
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].hi+1 >= r.lo {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, secRange{lo: r.lo, hi: r.hi})
	}
	if len(out) > maxSettledRanges {
		slices.SortFunc(out, func(a, b secRange) int { return cmp.Compare(b.hi-b.lo, a.hi-a.lo) })
		out = out[:maxSettledRanges]
	}
	return out
}

// countGroups counts the distinct events of table matching q per group
// of g, in one pass over the rows: the rows within the settled ranges as
// they are, the others de-duplicated. (Two branches, one per kind of row,
// joined by UNION ALL, read the workspace's granules twice: slower than
// de-duplicating everything when a filter leaves few rows.)
func (s *Store) countGroups(ctx context.Context, table string, g grouping, q query, settled []secRange, fn func(scan func(...any) error) error) error {
	cond, args := q.clauses()
	count := "uniqExact(timestamp_ns, id)"
	var in []any
	if within, hull, ok := settledCond(settled); ok {
		// The server computes the identical condition once per row.
		count = fmt.Sprintf("countIf(%s) + uniqExactIf(timestamp_ns, id, NOT %s)", within, within)
		in = slices.Concat(hull, hull)
	}
	sql := fmt.Sprintf("SELECT %s%s, %s AS cnt FROM %s\n%s\nGROUP BY %s\n%s", g.sel, g.aggs, count, table, cond, g.by, g.tail)
	return s.scanAll(ctx, sql, slices.Concat(in, args), fn)
}

// unitSeconds are the widths, finest first, of the time units settledCond
// names the gaps between settled ranges in; maxGapUnits bounds how many.
var unitSeconds = []int64{1, 60, 3600, 86400}

const maxGapUnits = 2048

// settledCond returns a condition true exactly for rows within the
// settled ranges (at least one, disjoint), with the arguments of its two
// placeholders: the rows within the ranges' hull, less those of the
// units (seconds, or minutes, hours or days: the finest of which at most
// maxGapUnits cover the gaps) that reach a gap between two ranges. A row
// of a unit reaching a gap is de-duplicated even when its own second is
// settled: exact either way, as the count only spares settled rows the
// de-duplication. One hull test and one set lookup per row cost the
// server less than a test of each range (2.6 times less for the largest
// workspace's hourly timeline, 12 ranges, 18.16: docs/reads.md). ok is
// false when no unit is coarse enough, or a range starts before 1970
// (intDiv truncates towards zero); then every row is de-duplicated.
func settledCond(settled []secRange) (cond string, hull []any, ok bool) {
	if len(settled) == 0 {
		return "", nil, false
	}
	rs := slices.SortedFunc(slices.Values(settled), func(a, b secRange) int { return cmp.Compare(a.lo, b.lo) })
	if rs[0].lo < 0 {
		return "", nil, false
	}
	for _, width := range unitSeconds {
		units, fits := gapUnits(rs, width)
		if !fits {
			continue
		}
		cond := "(timestamp_ns >= ? AND timestamp_ns < ?"
		if len(units) > 0 {
			names := make([]string, len(units))
			for i, u := range units {
				names[i] = strconv.FormatInt(u, 10)
			}
			cond += fmt.Sprintf(" AND intDiv(timestamp_ns, %d) NOT IN (%s)", width*1e9, strings.Join(names, ", "))
		}
		return cond + ")", []any{rs[0].lo * 1e9, (rs[len(rs)-1].hi + 1) * 1e9}, true
	}
	return "", nil, false
}

// gapUnits returns the units of width seconds that reach a gap between
// two of the sorted, disjoint ranges rs, unless there are more than
// maxGapUnits.
func gapUnits(rs []secRange, width int64) ([]int64, bool) {
	var units []int64
	last := int64(-1)
	for i := 1; i < len(rs); i++ {
		lo, hi := rs[i-1].hi+1, rs[i].lo-1
		if lo > hi {
			continue
		}
		for u := max(lo/width, last+1); u <= hi/width; u++ {
			if len(units) == maxGapUnits {
				return nil, false
			}
			units = append(units, u)
			last = u
		}
	}
	return units, true
}

// tableMark is what activeParts last saw of a table: its creation and
// highest block number, which only grow while the table lives.
type tableMark struct {
	created, top int64
}

// remade forgets what is kept of table's parts (the slot cache's counts
// and the parts checked to hold each key once) when it was dropped and
// made again since activeParts last read it: its creation time changed,
// or its highest block number went back.
func (s *Store) remade(table string, parts []part, top int64) {
	var created int64
	for _, p := range parts {
		created = p.created
	}
	old, seen := s.tables.Swap(table, tableMark{created: created, top: top})
	if !seen || len(parts) == 0 {
		return
	}
	if m := old.(tableMark); m.created == created && m.top <= top {
		return
	}
	s.distinctParts.Range(func(k, _ any) bool {
		if id := k.(partID); id.table == table {
			s.distinctParts.Delete(id)
		}
		return true
	})
	if s.slots != nil {
		s.slots.purge(table)
	}
}
