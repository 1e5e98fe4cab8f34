package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func TestManyPoliciesOnClickHouse18(t *testing.T) {
	t.Parallel()
	manyPolicies(t, onClickHouse18(t))
}

func TestManyPoliciesOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	manyPolicies(t, onCurrentClickHouse(t))
}

// manyPolicies: with 12,000 policies (past the 256 KiB max_query_size in
// one NOT IN list of 128-character ids), a run deletes the long-term rows
// past their window of a workspace without a policy and of one with a
// shorter window, and keeps a 400-day workspace's.
func manyPolicies(t *testing.T, srv drillServer) {
	ctx := context.Background()
	now := time.Now().UTC()
	const n = 12000
	id := func(i int) string { return fmt.Sprintf("ws_%0124d", i) } // 127 characters
	batch, err := srv.conn.PrepareBatch(ctx, migrations.Policies.Insert(srv.db))
	require.NoError(t, err)
	for i := range n {
		row := migrations.PolicyRow{WorkspaceID: id(i), Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour).Truncate(time.Second), Version: uint64(now.UnixNano())}
		if i == n/2 {
			row.Days = 400
		}
		require.NoError(t, batch.Append(migrations.Policies.Values(&row)...))
	}
	require.NoError(t, batch.Send())

	// Workspaces without a policy in every range of ids: before the first
	// named one, between two named ones (in the first, a middle and the
	// last range), after the last; with rows in the long-term table and
	// in the events table (past the deployment's window).
	none := []string{"a_none", "ws_", id(7) + "x", id(n/2+1) + "x", id(n-2) + "x", "zz_none"}
	kept, err := srv.conn.PrepareBatch(ctx, migrations.KeptInsert(srv.db))
	require.NoError(t, err)
	ev := func(ws string, i int, ts time.Time) event.Event {
		return event.Event{ID: fmt.Sprint("old-", i), WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
	}
	var live []event.Event
	for i, ws := range append([]string{id(n / 2), id(7), id(n - 1)}, none...) {
		e := ev(ws, i, now.Add(-100*24*time.Hour))
		row := migrations.RowOf(&e)
		require.NoError(t, kept.Append(migrations.KeptValues(&row, false, time.Time{})...))
		live = append(live, ev(ws, i, now.Add(-90*24*time.Hour).Truncate(24*time.Hour).Add(-time.Minute)))
	}
	require.NoError(t, kept.Send())
	stacktest.InsertEvents(t, srv.conn, srv.db, live...)

	_, err = retention.New(srv.conn, srv.db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).RunOnce(ctx)
	require.NoError(t, err)
	d := &drill{t: t, srv: srv}
	d.waitForMutations()
	var left []string
	rows, err := srv.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT workspace_id FROM %s.%s ORDER BY workspace_id", srv.db, migrations.KeptTable))
	require.NoError(t, err)
	for rows.Next() {
		var ws string
		require.NoError(t, rows.Scan(&ws))
		left = append(left, ws)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, []string{id(n / 2)}, left, "the 400-day workspace's row stays; the others, past their windows, are deleted")
	var inEvents uint64
	require.NoError(t, srv.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE workspace_id != ?", srv.db, migrations.Table), id(n/2)).Scan(&inEvents))
	require.Zero(t, inEvents, "the events table's rows past the deployment's window are gone, in every range")
}
