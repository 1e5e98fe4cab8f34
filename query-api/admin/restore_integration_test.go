package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/admin"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// chConn is what the round trip needs of a server: the real one or chdb.
type chConn interface {
	archive.Conn
	store.Conn
	admin.Conn
}

// TestArchiveAndRestoreOnClickHouse18 archives a workspace's day from the
// real server (18.16) and restores it.
func TestArchiveAndRestoreOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	roundTrip(t, conn, ch.Database, func(l *logtest.Log) error { return l.Insert(context.Background(), conn, ch.Database) })
}

// TestArchiveAndRestoreOnCurrentClickHouse does the same on current
// ClickHouse (chdb).
func TestArchiveAndRestoreOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	const db = "audittrail"
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	roundTrip(t, srv, db, func(l *logtest.Log) error { return l.InsertHex(context.Background(), srv, db) })
}

// roundTrip: the day's rows of the events table and the long-term table
// (not those restored before) are archived, each once, not the next day's
// or another workspace's; the file verifies offline; a restore proves it
// and inserts its rows into the long-term table, marked restored and kept
// until the chosen day.
func roundTrip(t *testing.T, conn chConn, db string, insertLog func(*logtest.Log) error) {
	ctx := context.Background()
	day := time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC)
	ev := func(ws, id string, at time.Time) event.Event {
		return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: at, ReceivedAt: at.Add(time.Second),
			Actor: event.Actor{Type: "user", ID: "usr_1", Name: `O'Brien "\"`}, Resource: event.Resource{Type: "source", ID: "src_1"},
			Properties: []byte(`{"n":"` + id + `"}`)}
	}
	events := []event.Event{
		ev("ws_a", "a1", day.Add(time.Hour)), ev("ws_a", "a2", day.Add(2*time.Hour)), ev("ws_a", "a3", day.Add(23*time.Hour+59*time.Minute)),
		ev("ws_a", "next", day.Add(24*time.Hour)), ev("ws_b", "b1", day.Add(time.Hour)),
	}
	stacktest.InsertEvents(t, conn, db, events...)
	stacktest.InsertEvents(t, conn, db, events[0]) // an unmerged copy
	kept := ev("ws_a", "k1", day.Add(3*time.Hour))
	restoredBefore := ev("ws_a", "r0", day.Add(4*time.Hour))
	insertKept(t, conn, db, kept, 0, time.Unix(0, 0))
	insertKept(t, conn, db, restoredBefore, 1, day.AddDate(2, 0, 0))

	ck, err := logtest.NewKey("audittrail.test")
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests.audittrail.test")
	require.NoError(t, err)
	log := logtest.New("audittrail.test", "ws_a")
	for _, e := range append(events[:4:4], kept, restoredBefore) {
		r := migrations.RowOf(&e)
		log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	_, err = log.Sign(ck, day.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.NoError(t, insertLog(log))

	dir := t.TempDir()
	a, err := archive.New(dir, archive.NewClickHouseRows(conn, db), store.NewLog(conn, db), mk.Signer, known(t, mk.Verifier), nil)
	require.NoError(t, err)
	require.NoError(t, a.Archive(ctx, "ws_a", day))
	file := filepath.Join(dir, "ws_a", "2025", "03", "09.ndjson.gz")
	_, err = os.Stat(filepath.Join(dir, "ws_a", "2025", "03", "09.unsealed.ndjson.gz"))
	require.ErrorIs(t, err, os.ErrNotExist, "every row had its leaf")

	cvs, err := verify.Verifiers([]string{ck.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{mk.Verifier})
	require.NoError(t, err)
	in, err := os.Open(file)
	require.NoError(t, err)
	rep, err := verify.Offline(in, cvs, mvs, "audittrail.test")
	in.Close()
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, 4, rep.Checked, "a1 (once), a2, a3 and k1; not next, b1 or r0")

	r := admin.NewRestorer(dir, conn, db, cvs, mvs, "audittrail.test")
	got, err := r.Load("ws_a", day)
	require.NoError(t, err)
	require.Equal(t, 4, got.Rows, "a1, a2, a3, k1")
	srv := newServer(t, r)
	rec := srv.do(http.MethodPost, "/admin/v1/workspaces/ws_a/archive/restore", aliceToken,
		`{"day": "2025-03-09", "until": "2027-06-30", "reason": "audit request 12"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"workspace_id":"ws_a","day":"2025-03-09","kept_until":"2027-06-30","rows":4,"files":1,"unsealed_not_restored":0}`, rec.Body.String())
	wsEvents, platform := srv.events()
	require.Len(t, wsEvents, 1)
	restoredEv := wsEvents[0]
	require.Equal(t, "Audit Archive Restored", restoredEv.Event)
	require.Equal(t, "audit_archive", restoredEv.Resource.Type)
	require.Equal(t, "ws_a/2025/03/09", restoredEv.Resource.ID)
	require.JSONEq(t, `{"archive_day":"2025-03-09","kept_until":"2027-06-30","rows":4,"files":1,"unsealed_not_restored":0}`,
		string(restoredEv.Properties))
	require.Len(t, platform, 1)
	require.JSONEq(t, `{"workspace_id":"ws_a","archive_day":"2025-03-09","kept_until":"2027-06-30","rows":4,"files":1,"unsealed_not_restored":0,"changed_by":"alice","reason":"audit request 12","reason_shared":false}`,
		string(platform[0].Properties))

	// Their leaves are written back from the manifest: index and hash as
	// the log has them.
	want := map[string]string{}
	for _, lf := range log.AllLeaves() {
		want[lf.ID] = fmt.Sprintf("%d %X", lf.Index, lf.Hash[:])
	}
	lrows, err := conn.Query(ctx, fmt.Sprintf("SELECT id, toString(leaf_index), hex(leaf_hash) FROM %s.%s WHERE workspace_id = ? ORDER BY id", db, migrations.KeptLeavesTable), "ws_a")
	require.NoError(t, err)
	var gotLeaves []string
	for lrows.Next() {
		var id, idx, h string
		require.NoError(t, lrows.Scan(&id, &idx, &h))
		require.Equal(t, want[id], idx+" "+h, id)
		gotLeaves = append(gotLeaves, id)
	}
	require.NoError(t, lrows.Err())
	lrows.Close()
	require.Equal(t, []string{"a1", "a2", "a3", "k1"}, gotLeaves)

	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id, toString(kept_until), properties, actor_name FROM %s.%s WHERE workspace_id = ? AND restored = 1 ORDER BY id", db, migrations.KeptTable), "ws_a")
	require.NoError(t, err)
	defer rows.Close()
	var restored []string
	for rows.Next() {
		var id, until, props, actor string
		require.NoError(t, rows.Scan(&id, &until, &props, &actor))
		restored = append(restored, strings.Join([]string{id, until, props, actor}, " "))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		`a1 2027-06-30 {"n":"a1"} O'Brien "\"`, `a2 2027-06-30 {"n":"a2"} O'Brien "\"`, `a3 2027-06-30 {"n":"a3"} O'Brien "\"`,
		`k1 2027-06-30 {"n":"k1"} O'Brien "\"`, `r0 2027-03-09 {"n":"r0"} O'Brien "\"`,
	}, restored)
}

func insertKept(t *testing.T, conn interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}, db string, e event.Event, restored uint8, until time.Time) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), migrations.KeptInsert(db))
	require.NoError(t, err)
	r := migrations.RowOf(&e)
	require.NoError(t, b.Append(migrations.KeptValues(&r, restored == 1, until)...))
	require.NoError(t, b.Send())
}
