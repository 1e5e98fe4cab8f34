package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// scriptEnv runs a bash snippet with scripts/lib/services.sh and
// scripts/lib/app.sh sourced, as scripts/up does.
func scriptEnv(t *testing.T, env []string, snippet string) string {
	t.Helper()
	lib, err := filepath.Abs("../lib")
	require.NoError(t, err)
	cmd := exec.Command("bash", "-c", fmt.Sprintf(". %q/services.sh && . %q/app.sh && %s", lib, lib, snippet))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s:\n%s", snippet, out)
	return string(out)
}

// The product's processes started by scripts/lib/app.sh (what scripts/up
// runs) write their JSON logs to $AUDITTRAIL_HOME/log/<name>.log, take the
// operator's exported secrets over the generated ones, and never log a
// bearer token, an ingest token, a write key or a webhook path, even when a
// delivery to that webhook fails.
func TestScriptStartedServicesLogWithoutSecrets(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	home := t.TempDir()
	sfx := stacktest.Suffix()
	db := "e2e_" + sfx
	topicNames := []string{"e2e-sevents-" + sfx, "e2e-sdlq-" + sfx, "e2e-ssettings-" + sfx, "e2e-sforward-dlq-" + sfx, "e2e-scheckpoints-" + sfx}
	dropAtCleanup(t, db, topicNames...)

	const (
		exportedIngest = "ingest_exported_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
		exportedSecret = "jwt_exported_secret_00112233445566778899aabbccddeeff"
		writeKey       = "wk_secret_5e5e5e5e5e5e5e5e"
		hookPath       = "/hooks/T000/B000/hooksecret9f8e7d6c5b4a"
	)
	var batches atomic.Int64
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/batch" {
			batches.Add(1)
		}
	}))
	defer sinkSrv.Close()
	// The alert webhook points at a port nobody listens on, so every alert
	// delivery fails and the forwarder has reason to log about it.
	deadHook := proctest.RefusedAddr(t)

	env := []string{
		"AUDITTRAIL_HOME=" + home,
		"AUDITTRAIL_KAFKA_TOPIC=" + topicNames[0],
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + topicNames[1],
		"AUDITTRAIL_SETTINGS_TOPIC=" + topicNames[2],
		"AUDITTRAIL_FORWARDER_DLQ_TOPIC=" + topicNames[3],
		"AUDITTRAIL_WRITER_GROUP=e2e-swriter-" + sfx,
		"AUDITTRAIL_FORWARDER_GROUP=e2e-sforwarder-" + sfx,
		"AUDITTRAIL_WRITER_INSTANCE_ID=e2e-swriter-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		// Each on a port of its choosing, which app_addr reads from its log.
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_API_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_FORWARDER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_SEALER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_ADMIN_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_SEALER_GROUP=e2e-ssealer-" + sfx,
		"AUDITTRAIL_CHECKPOINTS_TOPIC=" + topicNames[4],
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.TrimPrefix(sinkSrv.URL, "http://") + "," + deadHook,
		"AUDITTRAIL_FORWARDER_MAX_ATTEMPTS=2",
		"AUDITTRAIL_FORWARDER_RETRY_MAX=200ms",
		"AUDITTRAIL_INGEST_TOKENS=" + exportedIngest,
		"AUDITTRAIL_JWT_SECRET=" + exportedSecret,
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			scriptEnv(t, env, "app_stop")
		}
	}
	t.Cleanup(stop)
	scriptEnv(t, env, "app_build && app_secrets && app_start")
	addrs := strings.Fields(scriptEnv(t, env, "for n in ingest api forwarder admin; do app_addr $n; done"))
	require.Len(t, addrs, 4, "app_addr names each started service's address")
	for _, a := range addrs {
		require.NotEqual(t, proctest.AnyPort, a)
	}
	ingestAddr, apiAddr, fwdAddr, adminAddr := addrs[0], addrs[1], addrs[2], addrs[3]

	// The generated secrets file exists but the exported values are in use.
	generated, err := os.ReadFile(filepath.Join(home, "secrets.env"))
	require.NoError(t, err)
	require.NotContains(t, string(generated), exportedIngest)
	require.NotContains(t, string(generated), exportedSecret)
	signingKey := regexp.MustCompile(`(?m)^AUDITTRAIL_SIGNING_KEY=(PRIVATE\+KEY\+\S+)$`).FindStringSubmatch(string(generated))
	require.Len(t, signingKey, 2, "the checkpoints' signing key is generated beside the other secrets")
	manifestKey := regexp.MustCompile(`(?m)^AUDITTRAIL_MANIFEST_SIGNING_KEY=(PRIVATE\+KEY\+manifests\.\S+)$`).FindStringSubmatch(string(generated))
	require.Len(t, manifestKey, 2, "the manifests' own signing key is generated too")
	require.NotEqual(t, signingKey[1], manifestKey[1])
	adminToken := regexp.MustCompile(`(?m)^AUDITTRAIL_ADMIN_TOKENS=operator:(admin_[0-9a-f]{64})$`).FindStringSubmatch(string(generated))
	require.Len(t, adminToken, 2, "the admin API's operator token is generated too")
	_, err = os.Stat(filepath.Join(home, "archive"))
	require.NoError(t, err, "the writer archives into $AUDITTRAIL_HOME/archive")

	ingest, api := "http://"+ingestAddr, "http://"+apiAddr
	tok, err := auth.Mint([]byte(exportedSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_logs": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		status, _ := do(t, http.MethodGet, api+"/v1/workspaces/ws_logs/forwarding", tok, "")
		return status == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "the API accepts a token signed with the exported secret")

	status, body := do(t, http.MethodPut, api+"/v1/workspaces/ws_logs/forwarding", tok,
		fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": %q}}`, sinkSrv.URL, writeKey))
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = do(t, http.MethodPut, api+"/v1/workspaces/ws_logs/alerts", tok,
		fmt.Sprintf(`{"enabled": true, "webhook_url": %q, "events": ["Warehouses Disabled"]}`, "http://"+deadHook+hookPath))
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = do(t, http.MethodPost, api+"/v1/workspaces/ws_logs/forwarding/test", tok, "")
	require.Less(t, status, 500, string(body))

	// The admin API answers on its own listener with the generated
	// operator token, and not on the owners' one; the owner sees the change.
	status, body = do(t, http.MethodPut, "http://"+adminAddr+"/admin/v1/workspaces/ws_logs/retention", adminToken[1], `{"days": 400, "reason": "contract"}`)
	require.Equal(t, http.StatusOK, status, string(body))
	status, _ = do(t, http.MethodPut, api+"/admin/v1/workspaces/ws_logs/retention", adminToken[1], `{"days": 30}`)
	require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, status, "no admin route on the owners' listener")
	status, _ = do(t, http.MethodGet, "http://"+adminAddr+"/admin/v1/retention", tok, "")
	require.Equal(t, http.StatusUnauthorized, status, "an owner's token opens nothing on the admin API")
	status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_logs/retention", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	require.Contains(t, string(body), `"days":400`)

	ev := fmt.Sprintf(`{"workspace_id": "ws_logs", "event": "Warehouses Disabled", "timestamp": %q,
		"actor": {"type": "user", "id": "usr_1"}, "resource": {"id": "wh_1"}}`, time.Now().UTC().Format(time.RFC3339Nano))
	status, body = do(t, http.MethodPost, ingest+"/v1/events", exportedIngest, ev)
	require.Equal(t, http.StatusAccepted, status, "the gateway accepts the exported ingest token: %s", body)
	require.Eventually(t, func() bool { return batches.Load() > 0 }, 60*time.Second, 100*time.Millisecond, "event forwarded")
	// The failed alert deliveries end in the forwarder's dead letters; its
	// metrics say when, so the logs are read only after that.
	require.Eventually(t, func() bool {
		return metricAbove(fwdAddr, "audittrail_forwarder_dead_letters_total")
	}, 60*time.Second, 100*time.Millisecond, "failed alert dead-lettered")
	stop()

	secrets := map[string]string{
		"bearer token": tok, "ingest token": exportedIngest, "jwt secret": exportedSecret,
		"write key": writeKey, "webhook path": hookPath, "webhook path tail": "hooksecret9f8e7d6c5b4a",
		"signing key": signingKey[1], "manifest key": manifestKey[1], "admin token": adminToken[1],
	}
	for _, name := range []string{"writer", "ingest", "api", "forwarder", "sealer"} {
		f, err := os.Open(filepath.Join(home, "log", name+".log"))
		require.NoError(t, err)
		lines := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			lines++
			for what, s := range secrets {
				require.NotContains(t, line, s, "%s.log holds the %s", name, what)
			}
		}
		require.NoError(t, sc.Err())
		f.Close()
		require.Positive(t, lines, "%s.log is empty", name)
	}
}

// metricAbove reports whether the named counter, summed over its samples,
// is above 0 at base.
func metricAbove(base, name string) bool {
	v, _, err := proctest.Metric(context.Background(), strings.TrimPrefix(base, "http://"), name)
	return err == nil && v > 0
}
