package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// Interval is the width of a histogram's buckets.
type Interval string

// Intervals of Histogram. Every bucket starts at a whole minute, 5
// minutes, hour or midnight of the zone's clock.
const (
	Minute      Interval = "minute"
	FiveMinutes Interval = "5m"
	Hour        Interval = "hour"
	Day         Interval = "day"
)

// Duration is the interval's length (a day's length varies across a
// daylight-saving change; this is its usual 24 h, for bounds).
func (iv Interval) Duration() time.Duration {
	switch iv {
	case Minute:
		return time.Minute
	case FiveMinutes:
		return 5 * time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// Bucket is one bar of a histogram: how many events lie in [Start, the
// next bucket's start).
type Bucket struct {
	Start time.Time `json:"start"`
	Count uint64    `json:"count"`
}

// maxZoneChanges bounds the offset changes a histogram's expression
// spells out (a zone changes offset about twice a year).
const maxZoneChanges = 1000

// Histogram counts the events matching f (in the retention window) per
// interval of zone's clock, each event once however many unmerged copies
// it has: the counts are those of the events List pages through. Empty
// buckets are left out; the buckets come oldest first.
//
// ClickHouse is never given the zone's name (its own zone database may
// differ from the API's): the zone's UTC offsets over the span, as Go
// knows them, are spelled out in the query, and each event's bucket is
// the whole interval of its local time. Minute, 5-minute and hour buckets
// start at that whole interval in UTC (so the hour repeated when clocks go
// back is two buckets); a day bucket starts at the zone's midnight of that
// local date (or its first instant, where midnight is skipped).
func (s *Store) Histogram(ctx context.Context, f Filter, iv Interval, zone *time.Location) ([]Bucket, error) {
	out := []Bucket{}
	width := int64(iv.Duration() / time.Second)
	if width == 0 {
		return nil, fmt.Errorf("unknown interval %q", iv)
	}
	sc, err := s.scope(ctx, f)
	if err != nil || sc.empty() {
		return out, err
	}
	// No event older than the longest retention is counted (a held
	// workspace's window has no start; the zone's offsets need one).
	oldest := unixNano(s.now().AddDate(0, 0, -retentionpolicy.MaxDays-1))
	sc.kept.lo, sc.events.lo = max(sc.kept.lo, oldest), max(sc.events.lo, oldest)
	sp := sc.kept // the widest: the filter's range
	if sp.empty() {
		return out, nil
	}
	events, merged, err := s.source(ctx)
	if err != nil {
		return nil, err
	}
	table := events
	if lookup, ok := s.lookupFor(f); ok && merged {
		table = lookup
	}
	// Each branch's bucket key spells out the zone's offsets over its own
	// span only: over the events table's window that is a change or two,
	// where the long-term table's span reaches back years (about twenty
	// arms per row, twice).
	keyOver := func(sp span) (bucketing, error) {
		off, err := zoneOffsets(zone, sp, s.now())
		return bucketing{off: off, width: width, day: iv == Day}, err
	}
	var counts []keyCount
	if !sc.events.empty() {
		b, err := keyOver(sc.events)
		if err != nil {
			return nil, err
		}
		if counts, err = s.histogramCounts(ctx, table, merged, b, f, sc.events); err != nil {
			return nil, fmt.Errorf("histogram: %w", err)
		}
	}
	b, err := keyOver(sp)
	if err != nil {
		return nil, err
	}
	kept, err := s.keptCounts(ctx, events, f, sc, b.expr())
	if err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	counts = addCounts(counts, kept)
	for _, c := range counts {
		start := time.Unix(c.key, 0).UTC()
		if iv == Day {
			d := time.Unix(c.key*86400, 0).UTC()
			start = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, zone).UTC()
		}
		out = append(out, Bucket{Start: start, Count: c.n})
	}
	return out, nil
}

// offsets are a zone's UTC offsets (seconds) over a span, as a histogram
// spells them out: before ends[i] (a Unix second) the offset is offs[i],
// from the last end on it is offs[len(ends)]. The SQL expression (expr)
// and the Go function (at) are the same function of the second.
type offsets struct {
	ends []int64
	offs []int
}

// zoneOffsets returns zone's UTC offsets right over sp (and up to a week
// past now, when sp is open-ended; later instants take the last offset).
func zoneOffsets(zone *time.Location, sp span, now time.Time) (offsets, error) {
	lo := time.Unix(0, sp.lo)
	hi := now.Add(7 * 24 * time.Hour)
	if sp.hi < hi.UnixNano() {
		hi = time.Unix(0, sp.hi)
	}
	_, first := lo.In(zone).Zone()
	o := offsets{offs: []int{first}}
	prev := first
	for t := lo.In(zone); ; {
		_, end := t.ZoneBounds()
		if end.IsZero() || !end.Before(hi) {
			break
		}
		if _, off := end.Zone(); off != prev {
			o.ends = append(o.ends, end.Unix())
			o.offs = append(o.offs, off)
			prev = off
		}
		if len(o.ends) > maxZoneChanges {
			return offsets{}, fmt.Errorf("time zone %s changes offset more than %d times in the span", zone, maxZoneChanges)
		}
		t = end
	}
	return o, nil
}

// expr is a ClickHouse expression of the offset at the second
// intDiv(timestamp_ns, 1e9).
func (o offsets) expr() string {
	if len(o.ends) == 0 {
		return strconv.Itoa(o.offs[0])
	}
	arms := make([]string, len(o.ends))
	for i, end := range o.ends {
		arms[i] = fmt.Sprintf("intDiv(timestamp_ns, 1000000000) < %d, %d", end, o.offs[i])
	}
	return fmt.Sprintf("multiIf(%s, %d)", strings.Join(arms, ", "), o.offs[len(o.ends)])
}

// at is the offset at Unix second sec.
func (o offsets) at(sec int64) int {
	i, _ := slices.BinarySearch(o.ends, sec+1) // the first end after sec
	return o.offs[i]
}

// keptCounts counts per key the distinct events of the long-term table
// matching f in sc that the events table does not hold too (an event
// copied by a retention run stopped before its week was dropped is
// counted once, from the events table).
func (s *Store) keptCounts(ctx context.Context, events string, f Filter, sc scope, key string) ([]keyCount, error) {
	// Most workspaces have no long-term event: one granule says so, where
	// the count below reads the workspace's keys of the events table
	// (18.16 reads them for a GLOBAL IN of an empty set too: about 90 ms
	// for the largest workspace of the read bench).
	if any, err := s.anyKept(ctx, events, f, sc); err != nil || !any {
		return nil, err
	}
	var in query
	in.bounds(f.WorkspaceID, sc.kept)
	bs := s.branches(f.WorkspaceID, events, sc, sc.kept, func(q *query) { q.filters(f) })
	b := bs[len(bs)-1] // the long-term table's
	// The events table's copies are looked for only at the instants of the
	// long-term rows this count reads: the set is then as large as those
	// rows (none, for most workspaces), not the workspace's whole window of
	// events (2,000,000 keys read and hashed per request in the largest
	// workspace of the read bench).
	keptCond, keptArgs := b.q.clauses()
	// GLOBAL: on a cluster both tables are Distributed, and a subquery on
	// one inside a query on the other is refused (distributed_product_mode
	// 'deny'); the subquery runs once, on the node that reads.
	in.and("timestamp_ns GLOBAL IN (SELECT timestamp_ns FROM "+b.table+"\n"+keptCond+")", keptArgs...)
	inCond, inArgs := in.clauses()
	b.q.and("(timestamp_ns, id) GLOBAL NOT IN (SELECT timestamp_ns, id FROM "+events+"\n"+inCond+")", inArgs...)
	cond, args := b.q.clauses()
	sql := fmt.Sprintf("SELECT %s AS k, uniqExact(timestamp_ns, id) AS n FROM %s\n%s\nGROUP BY k ORDER BY k", key, b.table, cond)
	var out []keyCount
	err := s.scanAll(ctx, sql, args, appendKeyCount(&out))
	return out, err
}

// addCounts merges two lists of counts ordered by key.
func addCounts(a, b []keyCount) []keyCount {
	if len(b) == 0 {
		return a
	}
	byKey := map[int64]uint64{}
	for _, c := range slices.Concat(a, b) {
		byKey[c.key] += c.n
	}
	out := make([]keyCount, 0, len(byKey))
	for k, n := range byKey {
		out = append(out, keyCount{key: k, n: n})
	}
	slices.SortFunc(out, func(x, y keyCount) int { return cmp.Compare(x.key, y.key) })
	return out
}
