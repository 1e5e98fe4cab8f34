// Package e2e runs the product's binaries against the real Kafka and
// ClickHouse servers and checks that events travel the whole path:
// HTTP ingest -> Kafka -> writer consumer group -> ClickHouse -> read API,
// and that the Audit Trail page works on top of it in headless Chromium.
package e2e

import (
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

// service is a running product binary whose logs go to the test log on failure.
type service struct {
	name string
	p    *proctest.Process
}

// start starts bin, which listens on the ports its env names (AnyPort:
// one the kernel chooses, which url reads from its log), and stops it
// when the test ends.
func start(t *testing.T, name, bin string, env []string) *service {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	p, err := proctest.Start(cmd)
	require.NoError(t, err)
	s := &service{name: name, p: p}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, p.Out.String())
		}
	})
	return s
}

func (s *service) stop(t *testing.T) {
	if !s.p.Stop(syscall.SIGTERM, 30*time.Second) {
		t.Errorf("%s did not exit within 30s of SIGTERM", s.name)
	}
}

// url waits until the service's listener ("http", "admin") answers
// /readyz and returns its base URL.
func (s *service) url(t *testing.T, listener string) string {
	t.Helper()
	addr, err := s.p.Ready(context.Background(), listener, 60*time.Second)
	require.NoError(t, err, "%s %s", s.name, listener)
	return "http://" + addr
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

// stack is the ingest gateway, the writer and the API running on ports
// of their own choosing with their own topic, consumer group and database.
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
	bins := build(t)
	sfx := stacktest.Suffix()
	db := "e2e_" + sfx
	topicNames := []string{"e2e-events-" + sfx, "e2e-dlq-" + sfx, "e2e-settings-" + sfx, "e2e-checkpoints-" + sfx}
	env := []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + topicNames[0],
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + topicNames[1],
		"AUDITTRAIL_SETTINGS_TOPIC=" + topicNames[2],
		"AUDITTRAIL_CHECKPOINTS_TOPIC=" + topicNames[3],
		"AUDITTRAIL_WRITER_GROUP=e2e-writer-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_API_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.Join(allowed, ","),
	}
	if sealed {
		env = append(env, sealerEnv(t, sfx)...)
	}
	dropAtCleanup(t, db, topicNames...)
	ingest := start(t, "ingest", bins["ingest"], env)
	writer := start(t, "writer", bins["writer"], env)
	api := start(t, "api", bins["api"], env)
	s := stack{ingest: ingest.url(t, "http"), api: api.url(t, "http")}
	writer.url(t, "http")
	if sealed {
		start(t, "sealer", bins["sealer"], env).url(t, "http")
	}
	return s
}

// sealerEnv is the sealer's group, address and checkpoint key, and the
// API's manifest key, each new for the test.
func sealerEnv(t *testing.T, sfx string) []string {
	t.Helper()
	key := func(name string) (string, string) {
		skey, vkey, err := note.GenerateKey(rand.Reader, name)
		require.NoError(t, err)
		return skey, vkey
	}
	cpSigner, cpVerifier := key("e2e.audittrail.local")
	mSigner, mVerifier := key("e2e-manifests.audittrail.local")
	return []string{
		"AUDITTRAIL_SEALER_ADDR=" + proctest.AnyPort,
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
	bins := build(t)
	sfx := stacktest.Suffix()
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
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_API_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_FORWARDER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.Join(allowed, ","),
	}
	dropAtCleanup(t, db, topicNames...)
	svcs := map[string]*service{}
	for _, name := range []string{"ingest", "writer", "api", "forwarder"} {
		svcs[name] = start(t, name, bins[name], env)
	}
	urls := map[string]string{}
	for _, name := range []string{"ingest", "writer", "api", "forwarder"} {
		urls[name] = svcs[name].url(t, "http")
	}
	return forwardStack{stack: stack{ingest: urls["ingest"], api: urls["api"]}, forwarder: urls["forwarder"]}
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
