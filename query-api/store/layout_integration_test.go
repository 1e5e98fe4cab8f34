package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/migrations/migrationstest"
)

// TestReadsAcrossTheLayoutMoveOnTheRealServer reads a workspace on 18.16
// while migration 5 moves an old-layout table (the store reads both
// tables) and after (filtered pages find their keys in the lookup tables):
// the pages and counts are the same, each event once.
func TestReadsAcrossTheLayoutMoveOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	testReadsAcrossTheMove(t, conn, cfg.Database)
}

// TestReadsAcrossTheLayoutMoveOnCurrentClickHouse is the same on current
// ClickHouse (chdb).
func TestReadsAcrossTheLayoutMoveOnCurrentClickHouse(t *testing.T) {
	testReadsAcrossTheMove(t, chdbtest.Start(t), "audittrail")
}

// recording is a connection that keeps the statements the store runs.
type recording struct {
	migrations.Conn
	mu   sync.Mutex
	sqls []string
}

func (r *recording) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	r.mu.Lock()
	r.sqls = append(r.sqls, q)
	r.mu.Unlock()
	return r.Conn.Query(ctx, q, args...)
}

func (r *recording) ran() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := strings.Join(r.sqls, "\n")
	r.sqls = nil
	return out
}

func testReadsAcrossTheMove(t *testing.T, conn migrations.Conn, db string) {
	ctx := context.Background()
	o := migrations.Options{Database: db, RetentionDays: 90}
	require.NoError(t, migrationstest.BeforeLayout(ctx, conn, o))
	now := time.Now().UTC()
	ev := func(id, name, actor, resource string, age time.Duration) event.Event {
		e := mkEvent("ws", id, name, now.Add(-age))
		e.Actor.ID, e.Resource.ID = actor, resource
		return e
	}
	e1 := ev("e1", "Source Created", "usr_a", "src_1", time.Hour)
	e2 := ev("e2", "Destination Deleted", "usr_b", "dst_1", 3*24*time.Hour)
	e3 := ev("e3", "Source Created", "usr_b", "src_1", 20*24*time.Hour)
	e4 := ev("e4", "Destination Deleted", "usr_a", "dst_2", 40*24*time.Hour)
	other := ev("other", "Destination Deleted", "usr_a", "dst_1", time.Hour)
	other.WorkspaceID = "ws_other"
	stacktest.InsertEvents(t, conn, db, e1, e2, e3, e4, other)
	stacktest.InsertEvents(t, conn, db, e2) // a copy, not merged yet
	_, err := migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	e5 := ev("e5", "Destination Deleted", "usr_a", "dst_1", 2*time.Hour)
	stacktest.InsertEvents(t, conn, db, e5)
	stacktest.InsertEvents(t, conn, db, e5)

	rec := &recording{Conn: conn}
	s := store.New(rec, db, 90, func() time.Time { return now })
	cases := []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{WorkspaceID: "ws"}, []string{"e1", "e5", "e2", "e3", "e4"}},
		{store.Filter{WorkspaceID: "ws", Events: []string{"Destination Deleted"}}, []string{"e5", "e2", "e4"}},
		{store.Filter{WorkspaceID: "ws", ActorID: "usr_a"}, []string{"e1", "e5", "e4"}},
		{store.Filter{WorkspaceID: "ws", ResourceID: "dst_1"}, []string{"e5", "e2"}},
		{store.Filter{WorkspaceID: "ws", ResourceID: "src_1", Since: now.Add(-10 * 24 * time.Hour)}, []string{"e1"}},
	}
	check := func(stage string) {
		for _, c := range cases {
			var got []string
			var after *store.Cursor
			for range 10 {
				p, err := s.List(ctx, c.f, after, 2)
				require.NoError(t, err)
				for _, e := range p.Events {
					got = append(got, e.ID)
				}
				if after = p.Next; after == nil {
					break
				}
			}
			require.Equal(t, c.want, got, "%s: %+v", stage, c.f)
			facets, err := s.Facets(ctx, c.f)
			require.NoError(t, err)
			var n uint64
			for _, e := range facets.Events {
				n += e.Count
			}
			require.EqualValues(t, len(c.want), n, "%s: facets of %+v count each event once", stage, c.f)
		}
	}

	check("during the move")
	require.Contains(t, rec.ran(), "merge(", "both tables are read")
	moved, err := migrations.MoveLegacy(ctx, conn, o, now.Add(-90*24*time.Hour).Format("20060102"))
	require.NoError(t, err)
	require.NotEmpty(t, moved)
	check("after the move")
	ran := rec.ran()
	require.NotContains(t, ran, "merge(")
	for _, l := range migrations.Lookups {
		require.Contains(t, ran, "FROM "+db+"."+l.Table, "pages filtered by %s read their keys from its lookup table", l.Column)
	}
}
