package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// holdBeforeDelete places a hold on a workspace right before the delete
// of table reaches the server: the hold landed after the job's last check
// of the policies, and the admin API's own copy found no delete queued
// yet.
type holdBeforeDelete struct {
	retention.Conn
	policies      retentionpolicy.Conn
	db, ws, table string
	once          sync.Once
	err           error
}

func (c *holdBeforeDelete) Exec(ctx context.Context, query string, args ...any) error {
	if strings.Contains(query, "."+c.table+" DELETE") {
		c.once.Do(func() {
			c.err = retentionpolicy.Set(ctx, c.policies, c.db, retentionpolicy.Policy{Workspace: c.ws, Days: 30, Hold: true, HoldReason: "case 12",
				ChangedBy: "operator", ChangedAt: time.Now().UTC()})
		})
	}
	return c.Conn.Exec(ctx, query, args...)
}

// TestAHoldBetweenTheCheckAndTheDeleteKeepsTheRows: a hold placed between
// the job's last look at the policies and its last delete of the run (the
// last lookup table's; merges, and so the deletes, stopped) stops the run
// with ErrPoliciesChanged; the run that follows at once copies the held
// workspace's rows out of the queued deletes' way, so once they run every
// row of the held workspace is still in the events and lookup tables, and
// the other workspace's expired rows are gone.
func TestAHoldBetweenTheCheckAndTheDeleteKeepsTheRows(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	db := ch.Database
	now := time.Now().UTC()
	day := 24 * time.Hour
	var events []event.Event
	for _, ws := range []string{"ws_held", "ws_other"} {
		require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: ws, Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour)}))
		for i, age := range []time.Duration{45 * day, 40 * day, 10 * day} {
			ts := now.Add(-age)
			events = append(events, event.Event{ID: fmt.Sprintf("%s-%d", ws, i), WorkspaceID: ws, Event: "Source Created", Category: "Sources",
				Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}})
		}
	}
	stacktest.InsertEvents(t, conn, db, events...)
	tables := []string{migrations.Table}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	last := tables[len(tables)-1]
	merges := func(verb string) {
		for _, table := range tables {
			require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM %s MERGES %s.%s", verb, db, table)))
		}
	}
	merges("STOP")
	t.Cleanup(func() { merges("START") })

	racing := &holdBeforeDelete{Conn: conn, policies: conn, db: db, ws: "ws_held", table: last}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := retention.New(racing, db, 90, nil, quiet)
	_, err := e.RunOnce(ctx)
	require.NoError(t, racing.err)
	require.ErrorIs(t, err, retention.ErrPoliciesChanged, "the delete went out after the hold: the run stops")
	_, err = e.RunOnce(ctx) // what Run does at once after ErrPoliciesChanged
	require.NoError(t, err)

	merges("START")
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n))
		return n == 0
	}, 2*time.Minute, 50*time.Millisecond, "the queued deletes ran")
	ids := func(table, ws string) []string {
		return stacktest.Strings(t, conn, fmt.Sprintf("SELECT DISTINCT id FROM %s.%s WHERE workspace_id = ? ORDER BY id", db, table), ws)
	}
	for _, table := range tables {
		require.Equal(t, []string{"ws_held-0", "ws_held-1", "ws_held-2"}, ids(table, "ws_held"), "%s: every held row survived the deletes queued before the hold was seen", table)
		require.Equal(t, []string{"ws_other-2"}, ids(table, "ws_other"), "%s: the other workspace's expired rows are deleted", table)
	}
}
