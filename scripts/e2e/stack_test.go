// Package e2e runs the product's binaries against the real Kafka and
// ClickHouse servers and checks that events travel the whole path:
// HTTP ingest -> Kafka -> writer consumer group -> ClickHouse -> read API,
// and that the Audit Trail page works on top of it in headless Chromium.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
)

const (
	ingestToken = "e2e-ingest-token-0123456789abcdef"
	jwtSecret   = "e2e-jwt-secret-0123456789abcdef0123456789"
)

// build compiles the named commands (paths in the module) for one test.
func build(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	bins, err := proctest.Build(t.TempDir(), pkgs...)
	require.NoError(t, err)
	return bins
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
	t.Helper()
	require.NoError(t, proctest.WaitReady(context.Background(), strings.TrimPrefix(base, "http://"), 60*time.Second, nil))
}

func do(t *testing.T, method, url, auth, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// stack is the ingest gateway, the writer and the API running on free
// ports with their own topic, consumer group and database.
type stack struct {
	ingest, api string // base URLs
}

// startStack builds and starts the three binaries; everything stops and the
// database is dropped when the test ends. allowed are the exact ip:port of
// local targets the API may accept and call (forwarding test calls).
func startStack(t *testing.T, allowed ...string) stack {
	t.Helper()
	return startStackWith(t, false, allowed...)
}

// startSealedStack is startStack with the sealer beside it, signing a
// checkpoint every second with a key of its own, and the API signing
// export manifests with another: the integrity log of the page.
func startSealedStack(t *testing.T, allowed ...string) stack {
	t.Helper()
	return startStackWith(t, true, allowed...)
}

func startStackWith(t *testing.T, sealed bool, allowed ...string) stack {
	t.Helper()
	cmds := []string{"producers/cmd/ingest", "consumers/cmd/writer", "query-api/cmd/api"}
	if sealed {
		cmds = append(cmds, "consumers/cmd/sealer")
	}
	bins := build(t, cmds...)
	sfx := stacktest.Suffix()
	ingestAddr, apiAddr, writerAddr, sealerAddr := proctest.FreeAddr(), proctest.FreeAddr(), proctest.FreeAddr(), proctest.FreeAddr()
	db := "e2e_" + sfx
	topicNames := []string{"e2e-events-" + sfx, "e2e-dlq-" + sfx, "e2e-settings-" + sfx, "e2e-checkpoints-" + sfx}
	env := []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + topicNames[0],
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + topicNames[1],
		"AUDITTRAIL_SETTINGS_TOPIC=" + topicNames[2],
		"AUDITTRAIL_CHECKPOINTS_TOPIC=" + topicNames[3],
		"AUDITTRAIL_WRITER_GROUP=e2e-writer-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		"AUDITTRAIL_INGEST_ADDR=" + ingestAddr,
		"AUDITTRAIL_API_ADDR=" + apiAddr,
		"AUDITTRAIL_WRITER_ADDR=" + writerAddr,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.Join(allowed, ","),
	}
	if sealed {
		env = append(env, sealerEnv(t, sfx, sealerAddr)...)
	}
	dropAtCleanup(t, db, topicNames...)
	start(t, "ingest", bins["ingest"], env)
	start(t, "writer", bins["writer"], env)
	start(t, "api", bins["api"], env)
	s := stack{ingest: "http://" + ingestAddr, api: "http://" + apiAddr}
	waitReady(t, s.ingest)
	waitReady(t, "http://"+writerAddr)
	waitReady(t, s.api)
	if sealed {
		start(t, "sealer", bins["sealer"], env)
		waitReady(t, "http://"+sealerAddr)
	}
	return s
}

// sealerEnv is the sealer's group, address and checkpoint key, and the
// API's manifest key, each new for the test.
func sealerEnv(t *testing.T, sfx, addr string) []string {
	t.Helper()
	key := func(name string) (string, string) {
		skey, vkey, err := note.GenerateKey(rand.Reader, name)
		require.NoError(t, err)
		return skey, vkey
	}
	cpSigner, cpVerifier := key("e2e.audittrail.local")
	mSigner, mVerifier := key("e2e-manifests.audittrail.local")
	return []string{
		"AUDITTRAIL_SEALER_ADDR=" + addr,
		"AUDITTRAIL_SEALER_GROUP=e2e-sealer-" + sfx,
		"AUDITTRAIL_CHECKPOINT_INTERVAL=1s",
		"AUDITTRAIL_SIGNING_KEY=" + cpSigner,
		"AUDITTRAIL_VERIFIER_KEYS=" + cpVerifier,
		"AUDITTRAIL_MANIFEST_SIGNING_KEY=" + mSigner,
		"AUDITTRAIL_MANIFEST_VERIFIER_KEYS=" + mVerifier,
	}
}

// forwardStack is a stack with the forwarder running beside it.
type forwardStack struct {
	stack
	forwarder string // base URL of the forwarder's health and metrics
}

// startForwardStack builds and starts the gateway, the writer, the API and
// the forwarder with their own topics, groups and database; allowed are the
// exact ip:port of local targets the API and the forwarder may call.
func startForwardStack(t *testing.T, allowed ...string) forwardStack {
	t.Helper()
	bins := build(t, "producers/cmd/ingest", "consumers/cmd/writer", "query-api/cmd/api", "consumers/cmd/forwarder")
	sfx := stacktest.Suffix()
	ingestAddr, apiAddr, writerAddr, fwdAddr := proctest.FreeAddr(), proctest.FreeAddr(), proctest.FreeAddr(), proctest.FreeAddr()
	db := "e2e_" + sfx
	topicNames := []string{"e2e-fevents-" + sfx, "e2e-fdlq-" + sfx, "e2e-fsettings-" + sfx, "e2e-forward-dlq-" + sfx}
	env := []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + topicNames[0],
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + topicNames[1],
		"AUDITTRAIL_SETTINGS_TOPIC=" + topicNames[2],
		"AUDITTRAIL_FORWARDER_DLQ_TOPIC=" + topicNames[3],
		"AUDITTRAIL_WRITER_GROUP=e2e-fwriter-" + sfx,
		"AUDITTRAIL_FORWARDER_GROUP=e2e-forwarder-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		"AUDITTRAIL_INGEST_ADDR=" + ingestAddr,
		"AUDITTRAIL_API_ADDR=" + apiAddr,
		"AUDITTRAIL_WRITER_ADDR=" + writerAddr,
		"AUDITTRAIL_FORWARDER_ADDR=" + fwdAddr,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.Join(allowed, ","),
	}
	dropAtCleanup(t, db, topicNames...)
	for _, name := range []string{"ingest", "writer", "api", "forwarder"} {
		start(t, name, bins[name], env)
	}
	fs := forwardStack{stack: stack{ingest: "http://" + ingestAddr, api: "http://" + apiAddr}, forwarder: "http://" + fwdAddr}
	for _, base := range []string{fs.ingest, "http://" + writerAddr, fs.api, fs.forwarder} {
		waitReady(t, base)
	}
	return fs
}

// dropAtCleanup removes a test's database and topics when it ends.
func dropAtCleanup(t *testing.T, db string, topics ...string) {
	t.Cleanup(func() {
		conn, _ := stacktest.ClickHouseConn(t)
		if conn != nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topics...)
			cl.Close()
		}
	})
}

func mustField(t *testing.T, body []byte, key string) json.RawMessage {
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	return m[key]
}
