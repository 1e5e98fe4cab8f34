package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// A table dropped and made again reuses part names, and a part of the
// same rows and time range can be made in the same second: the cache
// must not serve the old table's counts for the new table's part.
func TestARecreatedTableIsNotServedFromTheCache(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	runRecreated(t, conn, cfg.Database)
}

func TestARecreatedTableIsNotServedFromTheCacheOnCurrentClickHouse(t *testing.T) {
	runRecreated(t, MigratedChdb(t, "audittrail", 90), "audittrail")
}

func runRecreated(t *testing.T, conn slotConn, db string) {
	ctx := context.Background()
	tbl := db + "." + migrations.Table
	var create string
	require.NoError(t, conn.(interface {
		QueryRow(context.Context, string, ...any) driver.Row
	}).QueryRow(ctx, "SHOW CREATE TABLE "+tbl).Scan(&create))
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	day := now.AddDate(0, 0, -3).Truncate(24 * time.Hour) // 17 Nov
	mk := func(offs ...time.Duration) []event.Event {
		var out []event.Event
		for i, o := range offs {
			out = append(out, mkSlotEvent("ws", fmt.Sprintf("x%d_%d", i, o), "Source Created", day.Add(o)))
		}
		return out
	}
	h := time.Hour
	a := mk(10*h, 11*h, 11*h+10*time.Minute, 12*h, 14*h-time.Second)
	b := mk(10*h, 10*h+5*time.Minute, 10*h+20*time.Minute, 10*h+40*time.Minute, 14*h-time.Second)
	type pinfo struct {
		name     string
		rows     uint64
		modified int64
	}
	partOf := func() pinfo {
		var p pinfo
		require.NoError(t, conn.(interface {
			QueryRow(context.Context, string, ...any) driver.Row
		}).QueryRow(ctx, "SELECT name, rows, toInt64(modification_time) FROM system.parts WHERE database = ? AND table = ? AND active",
			db, migrations.Table).Scan(&p.name, &p.rows, &p.modified))
		return p
	}
	remake := func() {
		require.NoError(t, conn.Exec(ctx, "DROP TABLE IF EXISTS "+tbl+dropSuffix(conn)))
		require.NoError(t, conn.Exec(ctx, create))
		require.NoError(t, conn.Exec(ctx, "SYSTEM STOP MERGES "+tbl))
	}
	for attempt := range 20 {
		remake()
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 5*time.Millisecond)))
		stacktest.InsertEvents(t, conn, db, a...)
		pa := partOf()
		s := New(conn, db, 90, func() time.Time { return now })
		s.slots.minRows = 0
		got, err := s.Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
		require.NoError(t, err)
		require.Len(t, got, 4)
		remake()
		stacktest.InsertEvents(t, conn, db, b...)
		pb := partOf()
		if pa != pb {
			t.Logf("attempt %d: parts differ %+v %+v", attempt, pa, pb)
			continue
		}
		t.Logf("same part identity %+v after the table was made again", pb)
		got, err = s.Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
		require.NoError(t, err)
		exact, err := New(conn, db, 90, func() time.Time { return now }).WithSlotCache(0, 0, nil).Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
		require.NoError(t, err)
		require.Equal(t, exact, got, "cached timeline after DROP/CREATE with the same part name, rows and modification second")
		return
	}
	t.Skip("never the same modification second")
}

// A tenant's 50,000 events in a part's first second, asked with ten
// filters: the cache's entries stay small (a part whose edge second holds
// more than maxEdgeKeys keys is not cached), and the counts exact.
func TestEdgeKeysAreBounded(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := cfg.Database
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	monday := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC) // the week partition's first second
	var evs []event.Event
	const n = 50_000
	for i := range n {
		evs = append(evs, mkSlotEvent("evil", fmt.Sprintf("evil-%06d-padding-padding", i), "Source Created", monday.Add(time.Duration(i)*time.Microsecond)))
	}
	for i := range 10 {
		evs = append(evs, mkSlotEvent("evil", fmt.Sprintf("late-%d", i), "Source Created", monday.Add(time.Duration(i+1)*time.Hour)))
	}
	stacktest.InsertEvents(t, conn, db, evs...)
	s := New(conn, db, 90, func() time.Time { return now }) // default cache, minRows 10,000
	var sizes []int64
	for i := range 10 {
		// Any never-matching negated search matches every row: a new key each time.
		f := Filter{WorkspaceID: "evil", Search: []search.Clause{{Field: search.Text, Values: []string{fmt.Sprintf("zz%d", i)}, Negate: true}}}
		got, err := s.Histogram(ctx, f, Hour, time.UTC)
		require.NoError(t, err)
		require.NotEmpty(t, got)
		s.slots.mu.Lock()
		sizes = append(sizes, s.slots.size)
		s.slots.mu.Unlock()
	}
	t.Logf("entries %d, bytes after each request: %v", s.slots.order.Len(), sizes)
	require.Less(t, sizes[len(sizes)-1], int64(10*22_000), "at most about 26 KB an entry (docs/configuration.md)")
	f := Filter{WorkspaceID: "evil"}
	got, err := s.Histogram(ctx, f, Hour, time.UTC)
	require.NoError(t, err)
	exact, err := New(conn, db, 90, func() time.Time { return now }).WithSlotCache(0, 0, nil).Histogram(ctx, f, Hour, time.UTC)
	require.NoError(t, err)
	require.Equal(t, exact, got, "a part not cached is counted")
}

// One workspace's requests with ever new filters do not push another
// workspace's entries out: past its share it drops its own.
func TestAWorkspaceCannotEvictAnothers(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := cfg.Database
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	w := &slotWorld{rng: rand.New(rand.NewPCG(1, 2))}
	for range 3 {
		stacktest.InsertEvents(t, conn, db, w.add("ws", 5000)...)
	}
	stacktest.InsertEvents(t, conn, db, mkSlotEvent("evil", "e1", "Source Created", now.AddDate(0, 0, -1)))
	optimize(t, conn, db)
	cc := &countingConn{Conn: conn}
	const entries = 80 // a workspace's share: 10
	s := New(cc, db, 90, func() time.Time { return now }).WithSlotCache(entries, DefaultSlotCacheBytes, nil)
	s.slots.minRows = 0
	victim := Filter{WorkspaceID: "ws"}
	_, err := s.Histogram(ctx, victim, Hour, time.UTC)
	require.NoError(t, err)
	perRequest := s.slots.order.Len()
	fills := cc.fillCount()
	_, err = s.Histogram(ctx, victim, Hour, time.UTC)
	require.NoError(t, err)
	require.Equal(t, fills, cc.fillCount(), "warm")
	// The attacker: as many requests as the cache holds entries per request.
	start := time.Now()
	reqs := entries/perRequest + 1
	for i := range reqs {
		f := Filter{WorkspaceID: "evil", ActorID: fmt.Sprintf("nobody-%d", i)}
		_, err := s.Histogram(ctx, f, Hour, time.UTC)
		require.NoError(t, err)
	}
	t.Logf("%d entries per request; %d attacker requests in %s evicted the cache (%d entries, %d bytes)", perRequest, reqs, time.Since(start), s.slots.order.Len(), s.slots.size)
	fills = cc.fillCount()
	_, err = s.Histogram(ctx, victim, Hour, time.UTC)
	require.NoError(t, err)
	require.Equal(t, fills, cc.fillCount(), "the victim's entries survive another tenant's requests")
}

// churnConn inserts one late event (a new small part in an old week)
// right after each fill query: a producer's late events while the
// timeline is counted.
type churnConn struct {
	slotConn
	t     *testing.T
	db    string
	at    time.Time
	fills int
	n     int
}

func (c *churnConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	rows, err := c.slotConn.Query(ctx, q, args...)
	if strings.Contains(q, "GROUP BY _part, slot") {
		c.fills++
		c.n++
		stacktest.InsertEvents(c.t, c.slotConn, c.db, mkSlotEvent("late", fmt.Sprintf("late%d", c.n), "Source Created", c.at.Add(time.Duration(c.n)*5*time.Hour)))
	}
	return rows, err
}

// Under churn (a new part reaching a summed slot during every count), the
// parts counted and still active afterwards are cached.
func TestFillsOfUnchangedPartsAreKept(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := cfg.Database
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	w := &slotWorld{rng: rand.New(rand.NewPCG(3, 4))}
	for range 3 {
		stacktest.InsertEvents(t, conn, db, w.add("ws", 3000)...)
	}
	optimize(t, conn, db)
	cc := &churnConn{slotConn: conn.(slotConn), t: t, db: db, at: now.AddDate(0, 0, -20).Truncate(time.Hour).Add(7 * time.Minute)}
	s := New(cc, db, 90, func() time.Time { return now })
	s.slots.minRows = 0
	_, err := s.Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
	require.NoError(t, err)
	t.Logf("fill queries (each over every part of the window): %d; entries cached: %d", cc.fills, s.slots.order.Len())
	require.Positive(t, s.slots.order.Len(), "the parts that did not change were counted and are still active: their counts could be kept")
}

// A row whose timestamp (the parts' time ranges) is not its timestamp_ns's
// second, in a slot no part's time range reaches: counted as the uncached
// count counts it.
func TestARowsTimestampMismatchIsCounted(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := cfg.Database
	tbl := db + "." + migrations.Table
	require.NoError(t, conn.Exec(ctx, "SYSTEM STOP MERGES "+tbl))
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	day := time.Date(2026, 11, 17, 0, 0, 0, 0, time.UTC)
	stacktest.InsertEvents(t, conn, db, mkSlotEvent("ws", "a1", "Source Created", day.Add(10*time.Hour)), mkSlotEvent("ws", "a2", "Source Created", day.Add(11*time.Hour)))
	stacktest.InsertEvents(t, conn, db, mkSlotEvent("ws", "b1", "Source Created", day.Add(13*time.Hour)), mkSlotEvent("ws", "b2", "Source Created", day.Add(14*time.Hour)))
	// A row whose timestamp says 10:30 and whose timestamp_ns says 12:00.
	insertMismatched(t, conn, db, "a1", day.Add(10*time.Hour+30*time.Minute), day.Add(12*time.Hour))
	s := New(conn, db, 90, func() time.Time { return now })
	s.slots.minRows = 0
	got, err := s.Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
	require.NoError(t, err)
	exact, err := New(conn, db, 90, func() time.Time { return now }).WithSlotCache(0, 0, nil).Histogram(ctx, Filter{WorkspaceID: "ws"}, Hour, time.UTC)
	require.NoError(t, err)
	require.Equal(t, exact, got)
}

// insertMismatched copies the row of id as an event "odd" whose timestamp
// is ts and whose timestamp_ns is ns.
func insertMismatched(t *testing.T, conn slotConn, db, id string, ts, ns time.Time) {
	ctx := context.Background()
	tbl := db + "." + migrations.Table
	var cols []string
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ? AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')", db, migrations.Table)
	require.NoError(t, err)
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Close())
	sel := make([]string, len(cols))
	for i, c := range cols {
		switch c {
		case "id":
			sel[i] = "'odd'"
		case "timestamp":
			sel[i] = fmt.Sprintf("toDateTime(%d)", ts.Unix())
		case "timestamp_ns":
			sel[i] = fmt.Sprintf("toInt64(%d)", ns.UnixNano())
		default:
			sel[i] = c
		}
	}
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE id = ?", tbl, strings.Join(cols, ", "), strings.Join(sel, ", "), tbl), id))
}

// A merged part holding a row whose timestamp_ns lies in a slot that only
// another part reaches (and is summed from that part's counts): the
// histogram is counted from rows, as the uncached count counts it.
func TestAPartsTimestampMismatchIsCountedFromRows(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := cfg.Database
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tue := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC) // the week before mon's
	mon := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
	stacktest.InsertEvents(t, conn, db, mkSlotEvent("ws", "p1", "Source Created", tue.Add(10*time.Hour)), mkSlotEvent("ws", "p2", "Source Created", tue.Add(11*time.Hour)))
	stacktest.InsertEvents(t, conn, db, mkSlotEvent("ws", "q1", "Source Created", mon.Add(1*time.Hour)), mkSlotEvent("ws", "q2", "Source Created", mon.Add(3*time.Hour)))
	insertMismatched(t, conn, db, "p1", tue.Add(10*time.Hour+30*time.Minute), mon.Add(2*time.Hour))
	optimize(t, conn, db) // one merged part a week
	s := New(conn, db, 90, func() time.Time { return now })
	s.slots.minRows = 0
	f := Filter{WorkspaceID: "ws"}
	exact, err := New(conn, db, 90, func() time.Time { return now }).WithSlotCache(0, 0, nil).Histogram(ctx, f, Hour, time.UTC)
	require.NoError(t, err)
	require.Contains(t, exact, Bucket{Start: mon.Add(2 * time.Hour), Count: 1})
	for _, phase := range []string{"cold", "warm"} {
		got, err := s.Histogram(ctx, f, Hour, time.UTC)
		require.NoError(t, err)
		require.Equal(t, exact, got, phase)
	}
}

func dropSuffix(conn slotConn) string {
	if _, ok := conn.(driver.Conn); ok {
		return ""
	}
	return " SYNC"
}
