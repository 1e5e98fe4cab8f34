package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestSelfProvingExportOverClickHouse exports through HTTP from the real
// ClickHouse (18.16) a filtered set and a leaf range of a sealed log, and
// verifies both files offline; hostile values in the new parameters get a
// 4xx, never a 5xx.
func TestSelfProvingExportOverClickHouse(t *testing.T) {
	proctest.Require(t)
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	key, err := logtest.NewKey("audittrail.local")
	require.NoError(t, err)
	mkey, err := logtest.NewKey("manifests.local")
	require.NoError(t, err)
	lg := logtest.New("audittrail.local", "ws_1")
	now := time.Now()
	var evs []event.Event
	for i := range 1500 {
		ev := stored(fmt.Sprintf("evt_%04d", i), fmt.Sprintf("User %d", i%7), now.Add(-time.Duration(1500-i)*time.Second))
		evs = append(evs, ev)
		r := migrations.RowOf(&ev)
		lg.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	_, err = lg.Sign(key, now)
	require.NoError(t, err)
	stacktest.InsertEvents(t, conn, cfg.Database, evs...)
	require.NoError(t, lg.Insert(ctx, conn, cfg.Database))

	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: store.New(conn, cfg.Database, 90, time.Now), Integrity: store.NewLog(conn, cfg.Database),
		VerifierKeys: []string{key.Verifier}, Origin: "audittrail.local", Signer: mkey.Signer, ManifestKeys: []string{mkey.Verifier},
		Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	vs, err := verify.Verifiers([]string{key.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{mkey.Verifier})
	require.NoError(t, err)

	for query, rows := range map[string]int{"": 1500, "q=" + url.QueryEscape(`actor:"User 3"`): 214, "from_index=200&to_index=1300": 1100} {
		resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.ndjson?"+query, tok)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		rep, err := verify.Offline(bytes.NewReader(body), vs, mvs, "audittrail.local")
		require.NoError(t, err)
		require.Empty(t, rep.Problems, query)
		require.Equal(t, rows, rep.Checked, query)
	}
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events/evt_0042/proof?size=1000", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	for _, path := range []string{"/audit-events.ndjson?checkpoint=", "/audit-events.ndjson?from_index=0&to_index=", "/log/checkpoint?size=",
		"/log/consistency?from=1&to=", "/audit-events/evt_0001/proof?size="} {
		for _, v := range []string{"0", "-1", "1e3", "%00", "99999999999999999999", "1500.5", "0x10", "' OR 1=1"} {
			resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1"+path+url.QueryEscape(v), tok)
			require.NoError(t, err)
			require.Less(t, resp.StatusCode, 500, "%s%s: %s", path, v, body)
		}
	}
}
