package store

// A histogram's counts from the slot cache: the settled parts' counts per
// 15-minute slot are kept (slotcache.go), and only the rest of the span is
// counted from rows.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// WithSlotCache makes s keep at most entries parts' counts per 15-minute
// slot for the timeline (0 keeps none), its metrics registered on reg
// when not nil. It returns s and must be called before s is used.
func (s *Store) WithSlotCache(entries int, reg prometheus.Registerer) *Store {
	s.slots = nil
	if entries > 0 {
		s.slots = newSlotCache(entries, reg)
	}
	return s
}

// minCachedPartRows is the fewest rows a part has for its counts to be
// cached: smaller parts are young (merged again soon, which would waste
// their counts) and cheap to read.
const minCachedPartRows = 100_000

// maxCachedRanges bounds the time ranges of cached slots a histogram
// takes (the longest are kept; the rest are counted from rows).
const maxCachedRanges = 64

// slotRun is the slots [lo, hi] of a part whose counts a histogram takes
// from the cache.
type slotRun struct {
	part   part
	lo, hi int64
}

// histogramCounts counts the distinct events of table matching f in sp per
// bucket of b. When direct (see distinctGroups) and b's buckets are sums of
// slots, the slots that lie wholly in a settled range of a part, and in
// sp, are summed from the part's cached counts per slot (the part's rows
// are distinct and no other part holds their seconds); the part's counts
// are counted once, over the part alone, on a miss. The rest of sp is
// counted from rows as distinctGroups does. The parts are read before and
// after, and the counts taken again when a settled range changed, as
// there; a part's counts enter the cache only once it is seen active after
// they were counted (so they were counted from it).
func (s *Store) histogramCounts(ctx context.Context, table string, direct bool, b bucketing, f Filter, sp span) ([]keyCount, error) {
	var q query
	q.bounds(f.WorkspaceID, sp)
	q.filters(f)
	if !direct || s.slots == nil || (!b.day && b.width < slotSeconds) {
		return s.distinctCounts(ctx, table, direct, b.expr(), q)
	}
	var fq query
	fq.filters(f)
	cond := fmt.Sprintf("%s\x00%q", strings.Join(fq.where, " AND "), fq.args)
	for range settledRetries {
		before, err := s.activeParts(ctx, table)
		if err != nil {
			return nil, err
		}
		if err := s.verifyParts(ctx, table, before); err != nil {
			return nil, err
		}
		owned := settledRanges(before)
		if len(owned) == 0 {
			break
		}
		runs, used := planSlots(owned, before, s.slots.minRows, sp, b)
		entries, fills, err := s.partSlots(ctx, table, f, cond, runs)
		if err != nil {
			return nil, err
		}
		var counts []keyCount
		if rest := outside(sp, used); len(rest) > 0 {
			rq := query{prewhere: slices.Clone(q.prewhere), where: q.where, preArgs: slices.Clone(q.preArgs), args: q.args}
			c, a := spansCond(rest)
			rq.pre(c, a...)
			g := grouping{sel: b.expr() + " AS k", by: "k", tail: "ORDER BY k"}
			if err := s.countGroups(ctx, table, g, rq, coalesce(owned), appendKeyCount(&counts)); err != nil {
				return nil, err
			}
		}
		after, err := s.activeParts(ctx, table)
		if err != nil {
			return nil, err
		}
		if stillSettled(owned, after) {
			for k, c := range fills {
				s.slots.put(k, c)
			}
			return addCounts(counts, sumSlots(runs, entries, b)), nil
		}
	}
	return s.distinctCounts(ctx, table, false, b.expr(), q)
}

// planSlots returns the runs of slots whose counts a histogram over sp
// bucketed by b takes from the cache: slots wholly inside sp and inside a
// range of owned (settled, by its owner) whose owner has at least minRows
// rows, each wholly in one bucket of b; and the time
// ranges (ns) they cover, sorted and joined, at most maxCachedRanges (the
// longest; the runs outside them are left out).
func planSlots(owned []secRange, parts []part, minRows uint64, sp span, b bucketing) ([]slotRun, []span) {
	const slotNs = slotSeconds * 1e9
	first, last := max(ceilDiv(sp.lo, slotNs), 0), sp.hi/slotNs-1
	var runs []slotRun
	for _, r := range owned {
		i := slices.IndexFunc(parts, func(p part) bool { return p.name == r.owner })
		if i < 0 || parts[i].rows < minRows || r.lo < 0 {
			continue
		}
		lo, hi := max(first, ceilDiv(r.lo, slotSeconds)), min(last, (r.hi+1)/slotSeconds-1)
		for n := lo; n <= hi; n++ {
			if !b.wholeSlot(n) {
				continue
			}
			if k := len(runs); k > 0 && runs[k-1].part.name == r.owner && runs[k-1].hi == n-1 {
				runs[k-1].hi = n
				continue
			}
			runs = append(runs, slotRun{part: parts[i], lo: n, hi: n})
		}
	}
	slices.SortFunc(runs, func(a, b slotRun) int { return cmp.Compare(a.lo, b.lo) })
	var used []span
	for _, r := range runs {
		lo, hi := r.lo*slotNs, (r.hi+1)*slotNs
		if k := len(used); k > 0 && used[k-1].hi == lo {
			used[k-1].hi = hi
			continue
		}
		used = append(used, span{lo: lo, hi: hi})
	}
	if len(used) > maxCachedRanges {
		slices.SortFunc(used, func(a, b span) int { return cmp.Compare(b.hi-b.lo, a.hi-a.lo) })
		used = used[:maxCachedRanges]
		slices.SortFunc(used, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
		runs = slices.DeleteFunc(runs, func(r slotRun) bool {
			return !slices.ContainsFunc(used, func(u span) bool { return u.lo <= r.lo*slotNs && (r.hi+1)*slotNs <= u.hi })
		})
	}
	return runs, used
}

// ceilDiv is a/b rounded up, for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

// outside returns the parts of sp outside the sorted, disjoint spans used
// (which lie inside sp).
func outside(sp span, used []span) []span {
	var out []span
	lo := sp.lo
	for _, u := range used {
		if u.lo > lo {
			out = append(out, span{lo: lo, hi: u.lo})
		}
		lo = u.hi
	}
	if lo < sp.hi {
		out = append(out, span{lo: lo, hi: sp.hi})
	}
	return out
}

// spansCond is a condition true for the rows within one of spans, with
// its arguments; each span's seconds bound timestamp too, which prunes
// parts and partitions by their time range.
func spansCond(spans []span) (string, []any) {
	ors := make([]string, len(spans))
	var args []any
	for i, sp := range spans {
		var q query
		q.bounds("", sp)
		ors[i] = "(" + strings.Join(q.prewhere[1:], " AND ") + ")"
		args = append(args, q.preArgs[1:]...)
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// partSlots returns the cached counts per slot of the runs' parts (rows of
// f's workspace matching f), counting those not cached in one query over
// those parts alone; fills are the counted ones, to cache once the parts
// are known to have been read.
func (s *Store) partSlots(ctx context.Context, table string, f Filter, cond string, runs []slotRun) (map[string][]slotCount, map[slotKey][]slotCount, error) {
	entries := map[string][]slotCount{}
	keys := map[string]slotKey{}
	var missing []any
	lo, hi := int64(0), int64(0)
	for _, r := range runs {
		p := r.part
		if _, done := entries[p.name]; done {
			continue
		}
		k := slotKey{part: partID{table, p.name, p.rows, p.modified}, workspace: f.WorkspaceID, cond: cond}
		if c, ok := s.slots.get(k); ok {
			entries[p.name] = c
			continue
		}
		if len(missing) == 0 || p.lo < lo {
			lo = p.lo
		}
		hi = max(hi, p.hi)
		entries[p.name], keys[p.name] = nil, k
		missing = append(missing, p.name)
	}
	if len(missing) == 0 {
		return entries, nil, nil
	}
	var q query
	q.pre("workspace_id = ?", f.WorkspaceID)
	q.pre("timestamp >= toDateTime(?)", max(lo, 0))
	q.pre("timestamp <= toDateTime(?)", max(hi, 0))
	q.and("_part IN ("+placeholders(len(missing))+")", missing...)
	q.filters(f)
	c, args := q.clauses()
	sql := fmt.Sprintf("SELECT _part, toInt32(intDiv(timestamp_ns, %d)) AS slot, toUInt32(count())\nFROM %s\n%s\nGROUP BY _part, slot ORDER BY _part, slot",
		int64(slotSeconds*1e9), table, c)
	err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var name string
		var sc slotCount
		if err := scan(&name, &sc.slot, &sc.n); err != nil {
			return err
		}
		entries[name] = append(entries[name], sc)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("count parts by slot: %w", err)
	}
	fills := make(map[slotKey][]slotCount, len(keys))
	for name, k := range keys {
		fills[k] = slices.Clip(entries[name])
	}
	return entries, fills, nil
}

// sumSlots adds up the runs' slots of entries (by part name) per bucket
// of b, ordered by key.
func sumSlots(runs []slotRun, entries map[string][]slotCount, b bucketing) []keyCount {
	byKey := map[int64]uint64{}
	for _, r := range runs {
		cs := entries[r.part.name]
		i, _ := slices.BinarySearchFunc(cs, r.lo, func(c slotCount, n int64) int { return cmp.Compare(int64(c.slot), n) })
		for ; i < len(cs) && int64(cs[i].slot) <= r.hi; i++ {
			byKey[b.key(int64(cs[i].slot)*slotSeconds)] += uint64(cs[i].n)
		}
	}
	out := make([]keyCount, 0, len(byKey))
	for k, n := range byKey {
		out = append(out, keyCount{key: k, n: n})
	}
	slices.SortFunc(out, func(x, y keyCount) int { return cmp.Compare(x.key, y.key) })
	return out
}
