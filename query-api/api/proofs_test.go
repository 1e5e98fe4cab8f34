package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/event"
)

// proofLog is a log of 300 leaves (more than one tile) with checkpoints
// at 7, 256 and 300.
func proofLog(t *testing.T) (*logtest.Log, logtest.Key) {
	t.Helper()
	k, err := logtest.NewKey("audittrail.test")
	require.NoError(t, err)
	l := logtest.New("audittrail.test", "ws_1")
	for i := range 300 {
		l.Append(int64(i+1), fmt.Sprintf("evt_%d", i), tlog.RecordHash([]byte(fmt.Sprint(i))))
		if n := i + 1; n == 7 || n == 256 || n == 300 {
			_, err := l.Sign(k, time.Unix(int64(n), 0))
			require.NoError(t, err)
		}
	}
	return l, k
}

// logEvents serves the events of proofLog: evt_<i> at timestamp i+1.
type logEvents struct{ *fakeReader }

func (logEvents) Get(_ context.Context, ws, id string) (event.Event, error) {
	var i int64
	if _, err := fmt.Sscanf(id, "evt_%d", &i); err != nil || ws != "ws_1" {
		return event.Event{}, store.ErrNotFound
	}
	return event.Event{ID: id, WorkspaceID: ws, Timestamp: time.Unix(0, i+1)}, nil
}

func newLogServer(t *testing.T, l LogReader, k logtest.Key) *httptest.Server {
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: logEvents{&fakeReader{}}, Integrity: l, VerifierKeys: []string{k.Verifier}, Origin: "audittrail.test",
		Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func decode[T any](t *testing.T, m map[string]any) T {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var v T
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func TestProofsVerify(t *testing.T) {
	l, k := proofLog(t)
	srv := newLogServer(t, l, k)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	v, err := note.NewVerifier(k.Verifier)
	require.NoError(t, err)

	status, body := get(t, srv, "/v1/log/keys", "")
	require.Equal(t, 200, status, body)
	require.Equal(t, []any{k.Verifier}, body["keys"])

	status, body = get(t, srv, "/v1/workspaces/ws_1/log/checkpoint", tok)
	require.Equal(t, 200, status, body)
	cp := decode[CheckpointResponse](t, body)
	require.EqualValues(t, 300, cp.Size)
	opened, err := note.Open([]byte(cp.Note), note.VerifierList(v))
	require.NoError(t, err)
	require.Equal(t, logtest.Body("audittrail.test/ws_1", 300, cp.RootHash), opened.Text)

	status, body = get(t, srv, "/v1/workspaces/ws_1/log/checkpoint?size=7", tok)
	require.Equal(t, 200, status, body)
	small := decode[CheckpointResponse](t, body)
	require.EqualValues(t, 7, small.Size)

	// Inclusion of leaf 5 in the trees of size 7 and 300, checked against
	// the signed roots.
	for _, c := range []struct {
		size int64
		root tlog.Hash
	}{{7, small.RootHash}, {300, cp.RootHash}} {
		status, body = get(t, srv, fmt.Sprintf("/v1/workspaces/ws_1/audit-events/evt_5/proof?size=%d", c.size), tok)
		require.Equal(t, 200, status, body)
		p := decode[InclusionResponse](t, body)
		require.EqualValues(t, 5, p.LeafIndex)
		require.NotNil(t, p.Checkpoint)
		require.NoError(t, tlog.CheckRecord(p.Proof, c.size, c.root, 5, tlog.RecordHash([]byte("5"))))
		require.Error(t, tlog.CheckRecord(p.Proof, c.size, c.root, 5, tlog.RecordHash([]byte("6"))))
	}

	status, body = get(t, srv, "/v1/workspaces/ws_1/log/consistency?from=7&to=300", tok)
	require.Equal(t, 200, status, body)
	cons := decode[ConsistencyResponse](t, body)
	require.NoError(t, tlog.CheckTree(cons.Proof, 300, cp.RootHash, 7, small.RootHash))
	// A size without a signed checkpoint still gets a proof and its root.
	status, body = get(t, srv, "/v1/workspaces/ws_1/log/consistency?from=100", tok)
	require.Equal(t, 200, status, body)
	cons = decode[ConsistencyResponse](t, body)
	require.NoError(t, tlog.CheckTree(cons.Proof, 300, cp.RootHash, 100, cons.FromRoot))
}

func TestProofsRejectBadInput(t *testing.T) {
	l, k := proofLog(t)
	srv := newLogServer(t, l, k)
	tok := token(t, map[string]string{"ws_1": "owner", "ws_2": "owner", "ws_3": "member"}, time.Hour)
	for _, c := range []struct {
		path, field string
		status      int
	}{
		{"/v1/workspaces/ws_1/log/checkpoint?size=0", "size", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=301", "size", 404}, // beyond the log: no such tree yet
		{"/v1/workspaces/ws_1/log/checkpoint?size=9223372036854775807", "size", 404},
		{"/v1/workspaces/ws_1/log/checkpoint?size=abc", "size", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=-1", "size", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=1&size=2", "size", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=99999999999999999999999", "size", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=8", "size", 404},
		{"/v1/workspaces/ws_1/log/checkpoint?sise=8", "sise", 400},
		{"/v1/workspaces/ws_1/audit-events/evt_5/proof?size=0", "size", 400},
		{"/v1/workspaces/ws_1/audit-events/evt_5/proof?size=5", "size", 409},
		{"/v1/workspaces/ws_1/audit-events/nope/proof", "id", 404},
		{"/v1/workspaces/ws_1/audit-events/bad%20id/proof", "id", 400},
		{"/v1/workspaces/ws_1/log/consistency?to=300", "from", 400},
		{"/v1/workspaces/ws_1/log/consistency?from=0", "from", 400},
		{"/v1/workspaces/ws_1/log/consistency?from=x", "from", 400},
		{"/v1/workspaces/ws_1/log/consistency?from=300&to=7", "from", 400},
		{"/v1/workspaces/ws_1/log/consistency?from=7&to=301", "to", 404},
		{"/v1/workspaces/ws_1/log/consistency?from=301", "from", 404},
		// Given empty, a size is no number (not the default).
		{"/v1/workspaces/ws_1/log/consistency?from=&to=", "to", 400},
		{"/v1/workspaces/ws_1/log/consistency?from=", "from", 400},
		{"/v1/workspaces/ws_1/log/checkpoint?size=", "size", 400},
		{"/v1/workspaces/ws_1/audit-events/evt_5/proof?size=", "size", 400},
		{"/v1/workspaces/ws_2/log/checkpoint", "", 404},
		{"/v1/workspaces/ws_3/log/checkpoint", "", 403},
		{"/v1/workspaces/ws_4/log/checkpoint", "", 404},
		{"/v1/log/keys?x=1", "x", 400},
	} {
		status, body := get(t, srv, c.path, tok)
		require.Equal(t, c.status, status, "%s: %v", c.path, body)
		if c.field != "" {
			require.Equal(t, c.field, body["error"].(map[string]any)["field"], c.path)
		}
	}
	status, _ := get(t, srv, "/v1/workspaces/ws_1/log/checkpoint", "")
	require.Equal(t, 401, status)
}

// The checkpoint route answers with the signed note's root, not the
// table's root column.
func TestCheckpointRootComesFromTheNote(t *testing.T) {
	l, k := proofLog(t)
	srv := newLogServer(t, &rewrittenRoot{l}, k)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	status, body := get(t, srv, "/v1/workspaces/ws_1/log/checkpoint", tok)
	require.Equal(t, 200, status, body)
	cp := decode[CheckpointResponse](t, body)
	v, err := note.NewVerifier(k.Verifier)
	require.NoError(t, err)
	n, err := note.Open([]byte(cp.Note), note.VerifierList(v))
	require.NoError(t, err)
	require.Equal(t, logtest.Body("audittrail.test/ws_1", 300, cp.RootHash), n.Text)
}

// rewrittenRoot serves a log whose checkpoints' root column was rewritten.
type rewrittenRoot struct{ *logtest.Log }

func (r *rewrittenRoot) LatestCheckpoint(ctx context.Context, ws string) (store.Checkpoint, error) {
	cp, err := r.Log.LatestCheckpoint(ctx, ws)
	cp.Root = tlog.RecordHash([]byte("forged"))
	return cp, err
}
