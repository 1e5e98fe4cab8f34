// Package e2e runs the product's binaries against the real Kafka and
// ClickHouse servers and checks that events travel the whole path:
// HTTP ingest -> Kafka -> writer consumer group -> ClickHouse -> read API.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
)

const (
	ingestToken = "e2e-ingest-token-0123456789abcdef"
	jwtSecret   = "e2e-jwt-secret-0123456789abcdef0123456789"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// build compiles the named commands once per test binary run.
func build(t *testing.T, pkgs ...string) map[string]string {
	dir := t.TempDir()
	out := map[string]string{}
	for _, p := range pkgs {
		bin := filepath.Join(dir, filepath.Base(p))
		cmd := exec.Command("go", "build", "-o", bin, "github.com/audittrail/audittrail/"+p)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Run(), "build %s", p)
		out[filepath.Base(p)] = bin
	}
	return out
}

// service is a running product binary whose logs go to the test log on failure.
type service struct {
	name string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func start(t *testing.T, name, bin string, env []string) *service {
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	s := &service{name: name, cmd: cmd, logs: &logs}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, logs.String())
		}
	})
	return s
}

func (s *service) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not exit within 30s of SIGTERM", s.name)
	}
}

func waitReady(t *testing.T, base string) {
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "%s not ready", base)
}

func do(t *testing.T, method, url, auth, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestEventsTravelTheWholePath(t *testing.T) {
	stacktest.Require(t)
	bins := build(t, "producers/cmd/ingest", "consumers/cmd/writer", "query-api/cmd/api")
	sfx := stacktest.Suffix()
	ingestAddr, apiAddr, writerAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	db := "e2e_" + sfx
	env := []string{
		"AUDITTRAIL_KAFKA_TOPIC=e2e-events-" + sfx,
		"AUDITTRAIL_WRITER_DLQ_TOPIC=e2e-dlq-" + sfx,
		"AUDITTRAIL_WRITER_GROUP=e2e-writer-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		"AUDITTRAIL_INGEST_ADDR=" + ingestAddr,
		"AUDITTRAIL_API_ADDR=" + apiAddr,
		"AUDITTRAIL_WRITER_ADDR=" + writerAddr,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
	}
	t.Cleanup(func() {
		conn, _ := stacktest.ClickHouseConn(t)
		if conn != nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
	})
	start(t, "ingest", bins["ingest"], env)
	start(t, "writer", bins["writer"], env)
	start(t, "api", bins["api"], env)
	ingest, api := "http://"+ingestAddr, "http://"+apiAddr
	waitReady(t, ingest)
	waitReady(t, "http://"+writerAddr)
	waitReady(t, api)

	now := time.Now().UTC()
	var batch []string
	for i := range 120 {
		ws := []string{"ws_e2e", "ws_other"}[i%2]
		batch = append(batch, fmt.Sprintf(`{"id": "e2e-%03d", "workspace_id": %q, "event": "Warehouses Disabled",
			"timestamp": %q, "actor": {"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource": {"id": "wh_%d", "name": "Snowflake"}, "changes": {"enabled": {"old": true, "new": false}},
			"context": {"ip": "198.51.100.7"}}`, i, ws, now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano), i))
	}
	status, body := do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))
	require.JSONEq(t, `120`, string(mustField(t, body, "accepted")))

	// The same batch again (a client retry) must not duplicate anything.
	status, body = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))

	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_e2e": "owner", "ws_other": "member"}, time.Hour, time.Now())
	require.NoError(t, err)

	var ids []string
	require.Eventually(t, func() bool {
		ids = ids[:0]
		cursor := ""
		for {
			url := api + "/v1/workspaces/ws_e2e/audit-events?limit=25"
			if cursor != "" {
				url += "&cursor=" + cursor
			}
			status, body := do(t, http.MethodGet, url, tok, "")
			if status != http.StatusOK {
				return false
			}
			var page struct {
				Data []struct {
					ID       string `json:"id"`
					Category string `json:"category"`
				} `json:"data"`
				NextCursor *string `json:"next_cursor"`
			}
			require.NoError(t, json.Unmarshal(body, &page))
			for _, e := range page.Data {
				require.Equal(t, "Warehouses", e.Category)
				ids = append(ids, e.ID)
			}
			if page.NextCursor == nil {
				return len(ids) == 60
			}
			cursor = *page.NextCursor
		}
	}, 60*time.Second, 250*time.Millisecond, "the API shows the posted events")

	for i, id := range ids {
		require.Equal(t, fmt.Sprintf("e2e-%03d", i*2), id, "newest first, each once")
	}

	status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events/e2e-004", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	var one map[string]any
	require.NoError(t, json.Unmarshal(body, &one))
	require.Equal(t, "Warehouses Disabled", one["event"])
	require.Equal(t, map[string]any{"enabled": map[string]any{"old": true, "new": false}}, one["changes"])
	require.Equal(t, "warehouse", one["resource"].(map[string]any)["type"])

	// A CSV export is recorded in the trail itself: through Kafka and the
	// writer, its "Audit Trail Exported" event shows in the workspace.
	status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events.csv?q=actor%3Aalice", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	require.Equal(t, 61, strings.Count(string(body), "\n"), "a header and 60 rows")
	require.Eventually(t, func() bool {
		status, body := do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events?event=Audit+Trail+Exported", tok, "")
		return status == http.StatusOK && strings.Contains(string(body), `"id":"usr_owner"`) && strings.Contains(string(body), `"q":"actor:alice"`)
	}, 60*time.Second, 250*time.Millisecond, "the export is recorded in the trail")

	status, _ = do(t, http.MethodGet, api+"/v1/workspaces/ws_other/audit-events", tok, "")
	require.Equal(t, http.StatusForbidden, status, "a member does not see the trail")
	status, _ = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events", "", "")
	require.Equal(t, http.StatusUnauthorized, status)
}

func mustField(t *testing.T, body []byte, key string) json.RawMessage {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	return m[key]
}
