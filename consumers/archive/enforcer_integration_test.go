package archive_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestRetentionArchivesBeforeItDeletes runs the retention job with the
// archiver on the real server (18.16): the day a 30-day workspace expires
// and the week a default (90-day) workspace loses are archived, each file
// verifies offline, and what is not expired is neither archived nor
// deleted. With an archiver that fails, nothing of the workspace is
// deleted.
func TestRetentionArchivesBeforeItDeletes(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	now := time.Now().UTC()
	dayOf := func(ago int) time.Time { return now.AddDate(0, 0, -ago).Truncate(24 * time.Hour).Add(12 * time.Hour) }
	ev := func(ws, id string, at time.Time) event.Event {
		return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: at, ReceivedAt: at,
			Actor: event.Actor{Type: "user", ID: "usr_1"}}
	}
	short := []event.Event{ev("ws_short", "s_old", dayOf(40)), ev("ws_short", "s_live", dayOf(10))}
	def := []event.Event{ev("ws_def", "d_old", dayOf(120)), ev("ws_def", "d_old2", dayOf(120).Add(time.Hour)), ev("ws_def", "d_live", dayOf(10))}
	stacktest.InsertEvents(t, conn, ch.Database, append(short, def...)...)
	ck, mk := signedLogs(ctx, t, conn, ch.Database, now, map[string][]event.Event{"ws_short": short, "ws_def": def})
	require.NoError(t, retentionpolicy.Set(ctx, conn, ch.Database, retentionpolicy.Policy{Workspace: "ws_short", Days: 30, ChangedBy: "alice", ChangedAt: now.Add(-time.Hour)}))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// An archiver that fails: nothing of ws_short's expired day goes.
	failing := retention.New(conn, ch.Database, 90, func() time.Time { return now }, quiet).SetArchiver(failArchiver{})
	_, err := failing.RunOnce(ctx)
	require.NoError(t, err)
	waitMutations(t, conn, ch.Database)
	require.Contains(t, stacktest.VisibleIDs(t, conn, ch.Database), "ws_short/s_old", "kept while its archive fails")

	dir := t.TempDir()
	a, err := archive.New(dir, archive.NewClickHouseRows(conn, ch.Database), store.NewLog(conn, ch.Database), mk.Signer, verifiersOf(t, mk), nil)
	require.NoError(t, err)
	enf := retention.New(conn, ch.Database, 90, func() time.Time { return now }, quiet).SetArchiver(a)
	_, err = enf.RunOnce(ctx)
	require.NoError(t, err)
	waitMutations(t, conn, ch.Database)
	require.Equal(t, map[string]int{"ws_short/s_live": 1, "ws_def/d_live": 1}, stacktest.VisibleIDs(t, conn, ch.Database))

	f := &fixture{ck: ck, mk: mk}
	for _, want := range []struct {
		ws   string
		day  time.Time
		rows int
	}{{"ws_short", dayOf(40), 1}, {"ws_def", dayOf(120), 2}} {
		parts, err := archivefile.Parts(dir, want.ws, want.day)
		require.NoError(t, err)
		require.Len(t, parts, 1, "%s: one sealed file, no unsealed one", want.ws)
		rep := f.verifyFile(t, parts[0].Path)
		require.Empty(t, rep.Problems, want.ws)
		require.Equal(t, want.rows, rep.Checked, want.ws)
	}
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	require.Len(t, files, 2, "nothing live is archived: %v", files)
}

type failArchiver struct{}

func (failArchiver) Archive(context.Context, string, time.Time) error {
	return errors.New("disk full")
}

func waitMutations(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n))
		return n == 0
	}, 60*time.Second, 50*time.Millisecond)
}

// TestLongAndHeldWorkspacesOnClickHouse18: a 400-day workspace's event,
// moved to the long-term tables when its week leaves the deployment's
// window, is archived from there (with its leaf from the long-term leaves)
// when it expires 400 days after its time, and the file verifies; a held
// workspace's old events are neither archived nor deleted.
func TestLongAndHeldWorkspacesOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	now := time.Now().UTC()
	at := func(ago int) time.Time { return now.AddDate(0, 0, -ago).Truncate(24 * time.Hour).Add(12 * time.Hour) }
	ev := func(ws, id string, ts time.Time) event.Event {
		return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Properties: []byte(`{"ws":"` + ws + `"}`)}
	}
	long := []event.Event{ev("ws_long", "l_300", at(300)), ev("ws_long", "l_live", at(5))}
	held := []event.Event{ev("ws_held", "h_480", at(480)), ev("ws_held", "h_live", at(5))}
	stacktest.InsertEvents(t, conn, ch.Database, append(long, held...)...)
	ck, mk := signedLogs(ctx, t, conn, ch.Database, now, map[string][]event.Event{"ws_long": long, "ws_held": held})
	for _, p := range []retentionpolicy.Policy{
		{Workspace: "ws_long", Days: 400, ChangedBy: "alice", ChangedAt: now.Add(-time.Hour)},
		{Workspace: "ws_held", Days: 30, Hold: true, HoldReason: "case 2026-114", ChangedBy: "alice", ChangedAt: now.Add(-time.Hour)},
	} {
		require.NoError(t, retentionpolicy.Set(ctx, conn, ch.Database, p))
	}
	dir := t.TempDir()
	a, err := archive.New(dir, archive.NewClickHouseRows(conn, ch.Database), store.NewLog(conn, ch.Database), mk.Signer, verifiersOf(t, mk), nil)
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runAt := func(clock time.Time) {
		t.Helper()
		_, err := retention.New(conn, ch.Database, 90, func() time.Time { return clock }, quiet).SetArchiver(a).RunOnce(ctx)
		require.NoError(t, err)
		waitMutations(t, conn, ch.Database)
	}

	runAt(now)
	var inEvents, inKept uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.Table+" WHERE id = 'l_300'").Scan(&inEvents))
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.KeptTable+" WHERE id = 'l_300'").Scan(&inKept))
	require.Equal(t, []uint64{0, 1}, []uint64{inEvents, inKept}, "the 300-day-old event moved to the long-term table")
	parts, err := archivefile.Parts(dir, "ws_long", at(300))
	require.NoError(t, err)
	require.Empty(t, parts, "kept, so not archived yet")

	runAt(now.AddDate(0, 0, 120)) // l_300 is now 420 days old
	parts, err = archivefile.Parts(dir, "ws_long", at(300))
	require.NoError(t, err)
	require.Len(t, parts, 1, "archived from the long-term tables, with its leaf")
	f := &fixture{ck: ck, mk: mk}
	rep := f.verifyFile(t, parts[0].Path)
	require.Empty(t, rep.Problems)
	require.Equal(t, 1, rep.Checked)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.KeptTable+" WHERE id = 'l_300'").Scan(&inKept))
	require.Zero(t, inKept, "deleted once archived")

	held480, err := archivefile.Parts(dir, "ws_held", at(480))
	require.NoError(t, err)
	require.Empty(t, held480, "a held workspace's events are not archived")
	var heldRows uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT (SELECT count() FROM "+ch.Database+"."+migrations.Table+" WHERE id = 'h_480') + "+
		"(SELECT count() FROM "+ch.Database+"."+migrations.KeptTable+" WHERE id = 'h_480')").Scan(&heldRows))
	require.Positive(t, heldRows, "the held workspace keeps its 480-day-old event")
}

// signedLogs stores each workspace's events as its integrity log, signed
// at now, and returns the log's key and a manifest key.
func signedLogs(ctx context.Context, t *testing.T, conn driver.Conn, db string, now time.Time, logs map[string][]event.Event) (ck, mk logtest.Key) {
	t.Helper()
	ck, err := logtest.NewKey("audittrail.test")
	require.NoError(t, err)
	mk, err = logtest.NewKey("manifests.audittrail.test")
	require.NoError(t, err)
	for ws, evs := range logs {
		l := logtest.New("audittrail.test", ws)
		for i := range evs {
			r := migrations.RowOf(&evs[i])
			l.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
		}
		_, err := l.Sign(ck, now)
		require.NoError(t, err)
		require.NoError(t, l.Insert(ctx, conn, db))
	}
	return ck, mk
}
