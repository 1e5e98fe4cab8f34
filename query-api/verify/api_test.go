package verify_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
)

// TestMonitorFollowsTheAPI runs the monitor against the read API: the
// checkpoints and the consistency proofs come from the API's routes.
func TestMonitorFollowsTheAPI(t *testing.T) {
	secret := []byte("test-secret-test-secret-test-secret!")
	key, err := logtest.NewKey(origin)
	require.NoError(t, err)
	lg := logtest.New(origin, "ws_t")
	e := httpserver.New(httpserver.Options{Name: "api"})
	api.New(api.Options{Integrity: lg, VerifierKeys: []string{key.Verifier}, Origin: origin, Verifier: auth.NewHMAC(secret),
		Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()
	tok, err := auth.Mint(secret, "auditor", "", "", map[string]string{"ws_t": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	client := verify.API{BaseURL: srv.URL, Token: tok}
	vs, err := verify.Verifiers([]string{key.Verifier})
	require.NoError(t, err)

	ctx := context.Background()
	state, err := verify.LoadState(filepath.Join(t.TempDir(), "state.json"))
	require.NoError(t, err)
	for round, n := range []int{5, 300, 301} {
		for lg.Size() < int64(n) {
			lg.Append(lg.Size(), fmt.Sprint(lg.Size()), tlog.RecordHash([]byte(fmt.Sprint(lg.Size()))))
		}
		_, err := lg.Sign(key, time.Now())
		require.NoError(t, err)
		msg, err := client.Checkpoint(ctx, "ws_t")
		require.NoError(t, err)
		require.Empty(t, state.ObservePublished(ctx, verify.Published{WorkspaceID: "ws_t", Note: msg}, vs, origin, client), "round %d", round)
		require.EqualValues(t, n, state.Workspaces["ws_t"].Size)
	}
	_, err = client.Checkpoint(ctx, "ws_other")
	require.ErrorContains(t, err, "404")
}
