package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestAnalystViewFollowsEachWorkspacesPolicyOnTheRealServer: the
// analysts' view serves what the API serves workspace by workspace, with
// retention policies and the long-term table, on 18.16.
func TestAnalystViewFollowsEachWorkspacesPolicyOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	checkAnalystPolicies(t, conn, cfg.Database)
}

// TestAnalystViewFollowsEachWorkspacesPolicyOnCurrentClickHouse is the
// same on current ClickHouse (chdb).
func TestAnalystViewFollowsEachWorkspacesPolicyOnCurrentClickHouse(t *testing.T) {
	checkAnalystPolicies(t, store.MigratedChdb(t, "ap", 90), "ap")
}

// analystConn is a connection of either server.
type analystConn interface {
	stacktest.Batcher
	migrations.Conn
}

// checkAnalystPolicies: a 30-day workspace's row of 40 days that the job
// has not deleted yet is hidden; a 400-day workspace's event of 200 days
// in the long-term table is served; a held workspace's rows copied to
// the long-term table out of a delete's way (younger than the
// deployment's window, no longer in the events table) are served, and an
// event in both tables once; a restored event is served, marked, until
// its kept_until day; a kept row past its workspace's window is hidden.
// Each workspace's rows and restored marks in the view equal the API's
// export (the store reading the same policies).
func checkAnalystPolicies(t *testing.T, conn analystConn, db string) {
	ctx := context.Background()
	now := time.Now().UTC()
	ev := func(ws, id string, age time.Duration) event.Event {
		ts := now.Add(-age)
		return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}}
	}
	day := 24 * time.Hour
	for _, p := range []retentionpolicy.Policy{
		{Workspace: "ws_short", Days: 30}, {Workspace: "ws_long", Days: 400}, {Workspace: "ws_hold", Days: 30, Hold: true, HoldReason: "litigation"},
	} {
		p.ChangedBy, p.ChangedAt = "operator", now.Add(-time.Minute)
		require.NoError(t, retentionpolicy.Set(ctx, conn, db, p))
	}
	both := ev("ws_hold", "hold_both", 50*day)
	stacktest.InsertEvents(t, conn, db,
		ev("ws_short", "short_live", time.Hour), ev("ws_short", "short_expired", 40*day),
		ev("ws_long", "long_live", time.Hour), ev("ws_default", "default_live", 2*time.Hour),
		both, both, // a replayed copy too
	)
	until := now.AddDate(0, 0, 10).Truncate(day)
	batch, err := conn.PrepareBatch(ctx, migrations.KeptInsert(db))
	require.NoError(t, err)
	for _, k := range []struct {
		e        event.Event
		restored bool
		until    time.Time
	}{
		{ev("ws_long", "long_kept", 200*day), false, time.Time{}},
		{ev("ws_long", "long_past", 401*day), false, time.Time{}},
		{ev("ws_hold", "hold_kept", 300*day), false, time.Time{}},
		{ev("ws_hold", "hold_copied", 45*day), false, time.Time{}}, // its events row deleted
		{both, false, time.Time{}},
		{ev("ws_default", "default_restored", 200*day), true, until},
		{ev("ws_default", "default_restored_over", 150*day), true, now.AddDate(0, 0, -1).Truncate(day)},
		{ev("ws_default", "default_kept_old", 200*day), false, time.Time{}},
	} {
		row := migrations.RowOf(&k.e)
		require.NoError(t, batch.Append(migrations.KeptValues(&row, k.restored, k.until)...))
	}
	require.NoError(t, batch.Send())

	s := store.New(conn, db, 90, nil).WithPolicies(retentionpolicy.NewCache(conn, db, 90, time.Minute, nil))
	want := map[string][]string{
		"ws_short":   {"short_live false"},
		"ws_long":    {"long_kept false", "long_live false"},
		"ws_hold":    {"hold_kept false", "hold_both false", "hold_copied false"},
		"ws_default": {"default_restored true", "default_live false"},
	}
	for ws, w := range want {
		var api []string
		require.NoError(t, s.Export(ctx, store.Filter{WorkspaceID: ws}, func(r *migrations.Row) error {
			e, err := s.Get(ctx, ws, r.ID)
			if err != nil {
				return err
			}
			api = append(api, fmt.Sprintf("%s %t", r.ID, e.Restored))
			return nil
		}))
		rows, err := conn.Query(ctx, "SELECT id, restored FROM "+db+"."+migrations.AnalystView+" WHERE workspace_id = ? ORDER BY timestamp_ns, id", ws)
		require.NoError(t, err)
		var view []string
		for rows.Next() {
			var id string
			var restored uint8
			require.NoError(t, rows.Scan(&id, &restored))
			view = append(view, fmt.Sprintf("%s %t", id, restored == 1))
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.ElementsMatch(t, w, api, "%s: the API", ws)
		require.Equal(t, len(w), len(view), "%s: each event once in the view: %v", ws, view)
		require.ElementsMatch(t, api, view, "%s: the view serves what the API serves", ws)
	}

	// Applying the migrations again keeps the view (it is made for this
	// window and the policies).
	var before, after string
	created := "SELECT toString(metadata_modification_time) || create_table_query FROM system.tables WHERE database = ? AND name = ?"
	require.NoError(t, conn.QueryRow(ctx, created, db, migrations.AnalystView).Scan(&before))
	_, err = migrations.Apply(ctx, conn, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, created, db, migrations.AnalystView).Scan(&after))
	require.Equal(t, before, after, "the view is not made again")
}
