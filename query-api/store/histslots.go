package store

// A histogram's counts from the slot cache: the parts' counts per
// 15-minute slot are kept (slotcache.go), and only the rest of the span
// is counted from rows.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// WithSlotCache makes s keep at most entries parts' counts per 15-minute
// slot for the timeline, about bytes bytes of them at most (0 entries or
// bytes keeps none), its metrics registered on reg when not nil. It
// returns s and must be called before s is used.
func (s *Store) WithSlotCache(entries int, bytes int64, reg prometheus.Registerer) *Store {
	s.slots = nil
	if entries > 0 && bytes > 0 {
		s.slots = newSlotCache(entries, bytes, reg)
	}
	return s
}

// minCachedPartRows is the fewest rows a part has for its counts to be
// cached: smaller parts are young (merged again soon, which would waste
// their counts) and cheap to read.
const minCachedPartRows = 10_000

// maxCachedRanges bounds the time ranges of cached slots a histogram
// takes (the longest are kept; the rest are counted from rows).
const maxCachedRanges = 64

// slotPlan is what a histogram takes from the cache: the slots, and the
// parts that reach them (each reaching one of the slots).
type slotPlan struct {
	slots []int64
	parts []part
	// used are the slots' time ranges (ns), sorted and joined.
	used []span
}

// histogramCounts counts the distinct events of table matching f in sp per
// bucket of b. When direct (see distinctGroups) and b's buckets are sums of
// slots, the slots that the parts' counts per slot can count exactly
// (planSlots) are summed from those counts, cached per part and counted
// once over the part alone on a miss; the rest of sp is counted from rows
// as distinctGroups does. The parts are read before and after: when the
// parts reaching a summed slot changed meanwhile, or a settled range
// changed, everything is counted again (as there). A part's counts enter
// the cache only once it is seen active after they were counted (so they
// were counted from it).
func (s *Store) histogramCounts(ctx context.Context, table string, direct bool, b bucketing, f Filter, sp span) ([]keyCount, error) {
	var q query
	q.bounds(f.WorkspaceID, sp)
	q.filters(f)
	if !direct || s.slots == nil || (!b.day && b.width < slotSeconds) {
		return s.distinctCounts(ctx, table, direct, b.expr(), q)
	}
	var fq query
	fq.filters(f)
	cond := condHash(fmt.Sprintf("%s\x00%q", strings.Join(fq.where, " AND "), fq.args))
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
		plan := planSlots(before, s.slots.minRows, sp, b)
		counted, fills, err := s.partSlots(ctx, table, f, cond, plan.parts)
		if errors.Is(err, errTimestampMismatch) {
			break
		}
		if err != nil {
			return nil, err
		}
		var counts []keyCount
		if rest := outside(sp, plan.used); len(rest) > 0 {
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
		// A part still active after its count was read whole by it
		// (parts never change): its counts are kept whatever happened to
		// the others. The next attempt plans again with the parts of then.
		active := make(map[partID]bool, len(after))
		for _, p := range after {
			active[p.id(table)] = true
		}
		for k, c := range fills {
			if active[k.part] {
				s.slots.put(k, c)
			}
		}
		if stillSettled(owned, after) && sameReach(plan, before, after) {
			return addCounts(counts, sumSlots(plan, counted, b)), nil
		}
	}
	return s.distinctCounts(ctx, table, false, b.expr(), q)
}

// reachBySlot returns, for each slot n of [first, last], the parts whose
// time range reaches it, at n-first.
func reachBySlot(parts []part, first, last int64) [][]part {
	if last < first {
		return nil
	}
	out := make([][]part, last-first+1)
	for _, p := range parts {
		for n := max(p.lo/slotSeconds, first); n <= min(p.hi/slotSeconds, last); n++ {
			out[n-first] = append(out[n-first], p)
		}
	}
	return out
}

// reachesAny reports whether p's time range reaches one of the sorted
// spans (ns).
func reachesAny(p part, spans []span) bool {
	lo, hi := p.lo*1e9, (p.hi+1)*1e9 // p's seconds as [lo, hi) ns
	i, _ := slices.BinarySearchFunc(spans, lo, func(s span, t int64) int { return cmp.Compare(s.hi, t+1) })
	return i < len(spans) && spans[i].lo < hi
}

// edge reports whether second sec is the first or last of p.
func edge(p part, sec int64) bool { return sec == p.lo || sec == p.hi }

// countable reports whether slot n's distinct events are the parts'
// counts: some part reaches it (a slot no part's time range reaches is
// counted from rows: a row whose timestamp disagrees with its
// timestamp_ns may lie there), every part reaching it holds each key once and has at least
// minRows rows, and two of them share at most one second of the slot,
// the first or last of both (where their keys are cached).
func countable(rs []part, n int64, minRows uint64) bool {
	lo, hi := n*slotSeconds, n*slotSeconds+slotSeconds-1
	if len(rs) == 0 {
		return false
	}
	for i, p := range rs {
		if !p.distinct || p.rows < minRows {
			return false
		}
		for _, o := range rs[:i] {
			a, z := max(p.lo, o.lo, lo), min(p.hi, o.hi, hi)
			if a <= z && (a != z || !edge(p, a) || !edge(o, a)) {
				return false
			}
		}
	}
	return true
}

// planSlots returns what a histogram over sp bucketed by b takes from the
// cache: the slots wholly inside sp and inside the parts' time ranges,
// each wholly in one bucket of b and countable from the parts' counts,
// at most maxCachedRanges ranges of them (the longest). Parts without a
// time range (a table not partitioned by time) take nothing.
func planSlots(parts []part, minRows uint64, sp span, b bucketing) slotPlan {
	const slotNs = slotSeconds * 1e9
	var plan slotPlan
	if len(parts) == 0 {
		return plan
	}
	lo, hi := parts[0].lo, parts[0].hi
	for _, p := range parts {
		if p.hi < p.lo || (p.lo == 0 && p.hi == 0) {
			return plan
		}
		lo, hi = min(lo, p.lo), max(hi, p.hi)
	}
	first := max(ceilDiv(sp.lo, slotNs), ceilDiv(lo, slotSeconds), 0)
	last := min(sp.hi/slotNs-1, (hi+1)/slotSeconds-1)
	reach := reachBySlot(parts, first, last)
	for n := first; n <= last; n++ {
		if !b.wholeSlot(n) || !countable(reach[n-first], n, minRows) {
			continue
		}
		plan.slots = append(plan.slots, n)
		if k := len(plan.used); k > 0 && plan.used[k-1].hi == n*slotNs {
			plan.used[k-1].hi += slotNs
			continue
		}
		plan.used = append(plan.used, span{lo: n * slotNs, hi: (n + 1) * slotNs})
	}
	if len(plan.used) > maxCachedRanges {
		slices.SortFunc(plan.used, func(a, b span) int { return cmp.Compare(b.hi-b.lo, a.hi-a.lo) })
		plan.used = plan.used[:maxCachedRanges]
		slices.SortFunc(plan.used, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
		plan.slots = slices.DeleteFunc(plan.slots, func(n int64) bool {
			return !slices.ContainsFunc(plan.used, func(u span) bool { return u.lo <= n*slotNs && n*slotNs < u.hi })
		})
	}
	for _, p := range parts {
		if reachesAny(p, plan.used) {
			plan.parts = append(plan.parts, p)
		}
	}
	return plan
}

// sameReach reports whether each slot of plan is reached by the same
// parts among after as among before: the plan's parts (every part of
// before reaching a slot of it) are all still active, and no part of
// after that before lacks reaches one of its slots.
func sameReach(plan slotPlan, before, after []part) bool {
	active := make(map[string]bool, len(after))
	for _, p := range after {
		active[p.name] = true
	}
	for _, p := range plan.parts {
		if !active[p.name] {
			return false
		}
	}
	known := make(map[string]bool, len(before))
	for _, p := range before {
		known[p.name] = true
	}
	for _, p := range after {
		if !known[p.name] && reachesAny(p, plan.used) {
			return false
		}
	}
	return true
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

// spansCond is a condition true for the rows whose timestamp_ns lies
// within one of spans, with its arguments. It bounds timestamp_ns alone
// (the primary key's second column prunes granules), not timestamp: the
// rows counted are those the uncached count would count there, whatever
// their timestamp column says, since the query bounds timestamp only by
// the whole span as that count does.
func spansCond(spans []span) (string, []any) {
	ors := make([]string, len(spans))
	var args []any
	for i, sp := range spans {
		ors[i] = "(timestamp_ns >= ? AND timestamp_ns < ?)"
		args = append(args, sp.lo, sp.hi)
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// sumSlots adds up the plan's slots per bucket of b from the parts'
// counts (by part name): in each slot, the parts' counts, less the rows of
// the seconds two parts share, plus those seconds' distinct keys. Ordered
// by key.
func sumSlots(plan slotPlan, counted map[string]partCounts, b bucketing) []keyCount {
	byKey := map[int64]uint64{}
	if len(plan.slots) == 0 {
		return nil
	}
	first := plan.slots[0]
	reach := reachBySlot(plan.parts, first, plan.slots[len(plan.slots)-1])
	for _, n := range plan.slots {
		rs := reach[n-first]
		var total uint64
		for _, p := range rs {
			cs := counted[p.name].slots
			if i, ok := slices.BinarySearchFunc(cs, n, func(c slotCount, n int64) int { return cmp.Compare(int64(c.slot), n) }); ok {
				total += uint64(cs[i].n)
			}
		}
		// The seconds two parts share: edges of both (countable).
		var shared []int64
		for i, p := range rs {
			for _, o := range rs[:i] {
				if a := max(p.lo, o.lo); a == min(p.hi, o.hi) && a/slotSeconds == n && !slices.Contains(shared, a) {
					shared = append(shared, a)
				}
			}
		}
		for _, sec := range shared {
			keys := map[key]bool{}
			for _, p := range rs {
				c := counted[p.name]
				var at []key
				switch sec {
				case p.lo:
					at = c.first
				case p.hi:
					at = c.last
				default:
					continue
				}
				total -= uint64(len(at))
				for _, k := range at {
					keys[k] = true
				}
			}
			total += uint64(len(keys))
		}
		if total > 0 {
			byKey[b.key(n*slotSeconds)] += total
		}
	}
	out := make([]keyCount, 0, len(byKey))
	for k, n := range byKey {
		out = append(out, keyCount{key: k, n: n})
	}
	slices.SortFunc(out, func(x, y keyCount) int { return cmp.Compare(x.key, y.key) })
	return out
}
