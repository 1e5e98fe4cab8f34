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
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func TestManyPoliciesOnClickHouse18(t *testing.T) { manyPolicies(t, onClickHouse18(t)) }

func TestManyPoliciesOnCurrentClickHouse(t *testing.T) { manyPolicies(t, onCurrentClickHouse(t)) }

// manyPolicies: with 12,000 policies (past the 256 KiB max_query_size in
// one NOT IN list of 128-character ids), a run deletes the long-term rows
// past their window of a workspace without a policy and of one with a
// shorter window, and keeps a 400-day workspace's.
func manyPolicies(t *testing.T, srv drillServer) {
	ctx := context.Background()
	now := time.Now().UTC()
	const n = 12000
	id := func(i int) string { return fmt.Sprintf("ws_%0125d", i) } // 128 characters
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

	kept, err := srv.conn.PrepareBatch(ctx, migrations.KeptInsert(srv.db))
	require.NoError(t, err)
	for i, ws := range []string{"ws_none", id(n / 2), id(7), id(n - 1)} {
		ts := now.Add(-100 * 24 * time.Hour)
		e := event.Event{ID: fmt.Sprint("old-", i), WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
		row := migrations.RowOf(&e)
		require.NoError(t, kept.Append(migrations.KeptValues(&row, false, time.Time{})...))
	}
	require.NoError(t, kept.Send())

	_, err = retention.New(srv.conn, srv.db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).RunOnce(ctx)
	require.NoError(t, err)
	d := &drill{t: t, srv: srv}
	d.waitForMutations()
	var left []string
	rows, err := srv.conn.Query(ctx, fmt.Sprintf("SELECT workspace_id FROM %s.%s ORDER BY workspace_id", srv.db, migrations.KeptTable))
	require.NoError(t, err)
	for rows.Next() {
		var ws string
		require.NoError(t, rows.Scan(&ws))
		left = append(left, ws)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, []string{id(n / 2)}, left, "the 400-day workspace's row stays; the others, past their windows, are deleted")
}
