package writer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestRowsPastTheWindowAreStoredInTheLongTermTableToo (18.16): a row
// older than the deployment's window (the writer stores one only when
// its workspace's policy keeps it) goes to both tables; a replay adds
// an equal copy; a row inside the window goes to the events table only.
func TestRowsPastTheWindowAreStoredInTheLongTermTableToo(t *testing.T) {
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	s := writer.NewClickHouseSink(conn, ch.Database).KeepLate(90, time.Now)
	row := func(id string, age time.Duration) migrations.Row {
		ts := time.Now().UTC().Add(-age)
		e := event.Event{ID: id, WorkspaceID: "ws_hold", Event: "Source Created", Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "u"}}
		return migrations.RowOf(&e)
	}
	rows := []migrations.Row{row("late", 200*24*time.Hour), row("fresh", time.Hour)}
	require.NoError(t, s.Insert(ctx, rows))
	require.NoError(t, s.Insert(ctx, rows), "a replay")
	ids := func(table string) []string {
		r, err := conn.Query(ctx, "SELECT DISTINCT id FROM "+ch.Database+"."+table+" ORDER BY id")
		require.NoError(t, err)
		defer r.Close()
		var out []string
		for r.Next() {
			var id string
			require.NoError(t, r.Scan(&id))
			out = append(out, id)
		}
		return out
	}
	require.Equal(t, []string{"fresh", "late"}, ids(migrations.Table))
	require.Equal(t, []string{"late"}, ids(migrations.KeptTable))
}
