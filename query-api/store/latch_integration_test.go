package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/migrations/migrationstest"
)

// TestStoreServesOldEventsAcrossMigration5OnCurrentClickHouse: a store of
// the new release answers before migration 5 ran (a rolling deploy: the
// writer applies it), then the writer swaps the layout in; the old event
// is served before, after the swap (from the old table) and after the
// move.
func TestStoreServesOldEventsAcrossMigration5OnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := migrations.Options{Database: "rv", RetentionDays: 90}
	require.NoError(t, migrationstest.BeforeLayout(ctx, srv, o))
	ts := time.Now().Add(-48 * time.Hour)
	require.NoError(t, srv.Exec(ctx, "INSERT INTO rv.audit_events (workspace_id, timestamp, timestamp_ns, id, event) VALUES ('ws_1', toDateTime(?), ?, 'old_1', 'Destination Deleted')", ts.Unix(), ts.UnixNano()))
	s := store.New(srv, "rv", 90, time.Now)
	served := func(stage string) {
		for _, f := range []store.Filter{{WorkspaceID: "ws_1"}, {WorkspaceID: "ws_1", Events: []string{"Destination Deleted"}}} {
			p, err := s.List(ctx, f, nil, 50)
			require.NoError(t, err)
			require.Len(t, p.Events, 1, "%s: %+v", stage, f)
		}
	}
	served("before migration 5")
	_, err := migrations.Apply(ctx, srv, o)
	require.NoError(t, err)
	served("after the swap, before the move")
	_, err = migrations.MoveLegacy(ctx, srv, o, "19700101")
	require.NoError(t, err)
	served("after the move")
}
