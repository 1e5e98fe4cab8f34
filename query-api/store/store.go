// Package store reads audit events from ClickHouse for the API. Every query
// is scoped to one workspace and to that workspace's retention window
// (its policy, see WithPolicies), whatever the caller asks, and every
// value reaches ClickHouse as a bound parameter. Reads go to the events
// table and to the long-term table of events kept past the deployment's
// window or restored from an archive (window.go).
// Copies of one event not yet merged by the ReplacingMergeTree are hidden
// (LIMIT 1 BY, or collapsing equal keys), so a replayed event is never
// returned or counted twice.
//
// The queries are shaped for ClickHouse 18.16, which cannot read a sorting
// key in order: the workspace and time bounds go in PREWHERE, a page is
// found reading only the key columns (and the filtered ones) with a top-N
// sort, and only that page's full rows are read afterwards; an export reads
// the window in chunks of days, newest first, so neither side ever sorts or
// holds more than one chunk.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the store needs of a ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Store reads events. It is safe for concurrent use.
type Store struct {
	conn     Conn
	database string
	table    string
	// moved is set once the old-layout events table is gone (see source).
	moved atomic.Bool
	// hasKept is set once the long-term table exists (see scope).
	hasKept atomic.Bool
	// distinctParts are the parts (partID) not made by a merge that were
	// checked to hold each key once (see verifyParts).
	distinctParts sync.Map
	// tables are what activeParts last saw of each table (tableMark).
	tables sync.Map
	// slots caches settled parts' counts per 15-minute slot for the
	// timeline (nil: none; see WithSlotCache).
	slots *slotCache
	// days is the window of a workspace without a policy; policies, when
	// set, gives each workspace's.
	days     int
	policies Policies
	now      func() time.Time
	// exportChunkRows is the number of rows an export asks ClickHouse to
	// sort at once, at most (a chunk is at least one day).
	exportChunkRows uint64
}

// New returns a store over database.audit_events that never returns events
// older than retentionDays (or, with WithPolicies, than each workspace's
// window).
func New(conn Conn, database string, retentionDays int, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{conn: conn, database: database, table: database + "." + migrations.Table,
		days: retentionDays, now: now, exportChunkRows: 200_000,
		slots: newSlotCache(DefaultSlotCacheEntries, DefaultSlotCacheBytes, nil)}
}

// Filter selects events of one workspace. Empty fields do not filter.
type Filter struct {
	WorkspaceID  string
	Events       []string
	Category     string
	ActorType    string
	ActorID      string
	ResourceType string
	ResourceID   string
	Since, Until time.Time // inclusive, exclusive; zero = open
	// Search holds the clauses of a parsed search (the q parameter); its
	// created: range is merged into Since and Until by the caller.
	Search []search.Clause
}

// Cursor is a position in the newest-first order: the (timestamp, id) of
// the last event of a page.
type Cursor struct {
	TimestampNs int64  `json:"t"`
	ID          string `json:"i"`
}

// Page is one page of events, newest first.
type Page struct {
	Events []event.Event
	// Next is set when more events may follow.
	Next *Cursor
}

// readColumns are the events table's columns the store reads into a Row
// (see each): every column a writer stores but the second-precision
// timestamp and received_at, which are rebuilt exactly from the _ns ones.
var readColumns = slices.DeleteFunc(slices.Clone(migrations.Events.InsertColumns()), func(c string) bool {
	return c == "timestamp" || c == "received_at"
})

// selectColumns is readColumns as a SELECT list.
var selectColumns = strings.Join(readColumns, ", ")

// span is a range of timestamps [lo, hi) in nanoseconds.
type span struct{ lo, hi int64 }

// unixNano is t.UnixNano clamped to what int64 nanoseconds hold.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// key identifies one event (and its unmerged copies).
type key struct {
	ns int64
	id string
}

// List returns up to limit events matching f, newest first (timestamp, then
// id, descending), after the cursor when one is given.
//
// It works in two steps: the first finds the page's keys reading only the
// key and filter columns (a top-N sort, newest day first, copies collapsed
// here) of the events table, or of a lookup table when the filter is one
// of event, actor_id or resource_id (lookupFor); the second reads the full
// rows of those keys only, by key.
func (s *Store) List(ctx context.Context, f Filter, after *Cursor, limit int) (Page, error) {
	sc, err := s.scope(ctx, f)
	if err != nil || sc.empty() {
		return Page{}, err
	}
	events, lookups, err := s.source(ctx)
	if err != nil {
		return Page{}, err
	}
	keysFrom, ages := events, probeAges
	if lookup, ok := s.lookupFor(f); ok && lookups {
		keysFrom, ages = lookup, lookupProbeAges
	}
	keys, err := s.pageKeys(ctx, keysFrom, ages, f, sc, after, limit+1)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if len(keys) > limit {
		keys = keys[:limit]
		last := keys[limit-1]
		p.Next = &Cursor{TimestampNs: last.ns, ID: last.id}
	}
	if p.Events, err = s.rows(ctx, events, sc, f.WorkspaceID, keys); err != nil {
		return Page{}, err
	}
	return p, nil
}

// probeAges are the ages, back from the newest end of a page's span, at
// which pageKeys splits it: a busy workspace fills its first page from the
// newest day alone, so ClickHouse reads one day instead of the window.
var probeAges = []time.Duration{24 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour}

// lookupProbeAges are probeAges for a lookup table, where a span costs
// about the rows matching in it: the newest day (enough for a common
// value), then the rest of the span at once.
var lookupProbeAges = []time.Duration{24 * time.Hour}

// pageKeys returns the keys of the first n distinct events matching f in
// sc after the cursor, newest first. It looks at the newest day first, then
// further back (ages, see probeAges) until it has n keys or reached the
// scope's start.
func (s *Store) pageKeys(ctx context.Context, table string, ages []time.Duration, f Filter, sc scope, after *Cursor, n int) ([]key, error) {
	sp := sc.kept // the widest: the filter's range
	if after != nil {
		sp.hi = min(sp.hi, after.TimestampNs+1)
	}
	// The newest end: the cursor, the until bound, or now (events may be
	// up to a day ahead of the clock, so the first probe is open-ended).
	end := min(sp.hi, s.now().UnixNano())
	var keys []key
	for i := 0; i <= len(ages) && len(keys) < n; i++ {
		probe := sp
		if i > 0 {
			probe.hi = end - int64(ages[i-1])
		}
		if i < len(ages) {
			probe.lo = max(sp.lo, end-int64(ages[i]))
		}
		if probe.hi <= probe.lo {
			continue
		}
		found, err := s.probeKeys(ctx, table, f, sc, probe, after, n-len(keys))
		if err != nil {
			return nil, err
		}
		keys = append(keys, found...)
		if probe.lo == sp.lo {
			break
		}
	}
	return keys, nil
}

// probeKeys returns the keys of the first n distinct events matching f in
// sp after the cursor, newest first, from table (the events table or a
// lookup table) and the long-term table. Copies of an event are rare, so
// it asks for n rows, and asks again for more only when copies made it
// fall short.
func (s *Store) probeKeys(ctx context.Context, table string, f Filter, sc scope, sp span, after *Cursor, n int) ([]key, error) {
	bs := s.branches(f.WorkspaceID, table, sc, sp, func(q *query) {
		if after != nil {
			q.pre("(timestamp_ns < ? OR (timestamp_ns = ? AND id < ?))", after.TimestampNs, after.TimestampNs, after.ID)
		}
		q.filters(f)
	})
	if len(bs) == 0 {
		return nil, nil
	}
	for want := n; ; want *= 4 {
		order := fmt.Sprintf("\nORDER BY timestamp_ns DESC, id DESC\nLIMIT %d", want)
		from, args := union(bs, "timestamp_ns, id", false, order)
		sql := "SELECT timestamp_ns, id FROM " + from + order
		rows, err := s.conn.Query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("query page keys: %w", err)
		}
		keys := make([]key, 0, n)
		raw := 0
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.ns, &k.id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan page key: %w", err)
			}
			raw++
			if len(keys) > 0 && keys[len(keys)-1] == k {
				continue // an unmerged copy
			}
			if len(keys) < n {
				keys = append(keys, k)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read page keys: %w", err)
		}
		if len(keys) == n || raw < want {
			return keys, nil
		}
	}
}

// rows reads the full rows of keys (one workspace) from table and returns
// them in the order of keys. The keys' seconds go to PREWHERE as
// timestamp IN (...), which 18.16 prunes parts with (their min and max
// timestamp), so only the parts holding the keys are read, however far
// apart the keys are; a condition on timestamp_ns prunes nothing there when
// a workspace's rows fill less than a granule of each part.
func (s *Store) rows(ctx context.Context, table string, sc scope, workspaceID string, keys []key) ([]event.Event, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ids := make([]any, len(keys))
	var secs []any // the keys' seconds, newest first, each once
	for i, k := range keys {
		ids[i] = k.id
		if sec := max(k.ns/1e9, 0); len(secs) == 0 || secs[len(secs)-1] != sec {
			secs = append(secs, sec)
		}
	}
	// keys are newest first.
	bs := s.branches(workspaceID, table, sc, span{lo: keys[len(keys)-1].ns, hi: keys[0].ns + 1}, func(q *query) {
		q.pre("timestamp IN ("+strings.TrimSuffix(strings.Repeat("toDateTime(?), ", len(secs)), ", ")+")", secs...)
		q.and("id IN ("+placeholders(len(ids))+")", ids...)
	})
	from, args := union(bs, selectColumns, true, "\nLIMIT 1 BY timestamp_ns, id")
	byKey := make(map[key]event.Event, len(keys))
	err := s.eachRestored(ctx, "SELECT * FROM "+from, args, func(r *migrations.Row, restored bool) error {
		k := key{r.TimestampNs, r.ID}
		if e, ok := byKey[k]; ok {
			e.Restored = e.Restored || restored
			byKey[k] = e
			return nil
		}
		e := toEvent(r)
		e.Restored = restored
		byKey[k] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]event.Event, 0, len(keys))
	for _, k := range keys {
		// An id may repeat with another timestamp in the range; only the
		// page's keys are kept.
		if e, ok := byKey[k]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// Get returns one event by id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, workspaceID, id string) (event.Event, error) {
	sc, err := s.scope(ctx, Filter{WorkspaceID: workspaceID})
	if err != nil {
		return event.Event{}, err
	}
	events, _, err := s.source(ctx)
	if err != nil {
		return event.Event{}, err
	}
	bs := s.branches(workspaceID, events, sc, all, func(q *query) { q.and("id = ?", id) })
	if len(bs) == 0 {
		return event.Event{}, ErrNotFound
	}
	order := "\nORDER BY timestamp_ns DESC, restored DESC LIMIT 1"
	from, args := union(bs, selectColumns, true, order)
	var found *event.Event
	err = s.eachRestored(ctx, "SELECT * FROM "+from+order, args, func(r *migrations.Row, restored bool) error {
		e := toEvent(r)
		e.Restored = restored
		found = &e
		return nil
	})
	if err != nil {
		return event.Event{}, err
	}
	if found == nil {
		return event.Event{}, ErrNotFound
	}
	return *found, nil
}

// ErrNotFound means no such event in the window.
var ErrNotFound = errors.New("event not found")

// each runs sql, which selects selectColumns, and calls fn for each row,
// reusing one Row. fn must not keep r.
func (s *Store) each(ctx context.Context, sql string, args []any, fn func(r *migrations.Row) error) error {
	return s.scanEvents(ctx, sql, args, false, func(r *migrations.Row, _ bool) error { return fn(r) })
}

// eachRestored is each for sql that selects selectColumns and restored.
func (s *Store) eachRestored(ctx context.Context, sql string, args []any, fn func(r *migrations.Row, restored bool) error) error {
	return s.scanEvents(ctx, sql, args, true, fn)
}

func (s *Store) scanEvents(ctx context.Context, sql string, args []any, withRestored bool, fn func(r *migrations.Row, restored bool) error) error {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var r migrations.Row
	var restored uint8
	dest := migrations.Events.Pointers(&r, readColumns)
	if withRestored {
		dest = append(dest, &restored)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("scan event: %w", err)
		}
		r.Timestamp = time.Unix(0, r.TimestampNs).UTC()
		r.ReceivedAt = time.Unix(0, r.ReceivedAtNs).UTC()
		if err := fn(&r, restored != 0); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
