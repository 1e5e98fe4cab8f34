package monitoring

// The live stack the integration tests scrape: the five services built from
// this module, on free ports, with their own topics, groups and database on
// the shared Kafka and ClickHouse. The writer reaches ClickHouse through a
// proxy the test can cut, to simulate ClickHouse going down without
// touching the shared server.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
)

const (
	ingestToken = "monitoring-ingest-token-0123456789abcdef"
	jwtSecret   = "monitoring-jwt-secret-0123456789abcdef0123456789"
)

// stack is the running services.
type stack struct {
	addrs    map[string]string // service name -> host:port of its HTTP
	env      []string          // the AUDITTRAIL_* variables they run with
	bins     map[string]string // the built commands, dlq and status included
	db       string
	topic    string
	chProxy  *stacktest.Proxy
	sink     *httptest.Server // the forwarding target: refuses every batch (400)
	sinkHits atomic.Int64
}

var services = []string{"writer", "forwarder", "ingest", "api", "sealer"}

// startStack builds and starts the services; they stop, and the database
// and topics go, when the test ends.
func startStack(t *testing.T) *stack {
	t.Helper()
	bins, err := proctest.Build(t.TempDir(), "producers/cmd/ingest", "consumers/cmd/writer", "consumers/cmd/forwarder",
		"query-api/cmd/api", "consumers/cmd/sealer", "consumers/cmd/dlq", "scripts/cmd/status")
	require.NoError(t, err)
	s := &stack{bins: bins, addrs: map[string]string{}}
	s.sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.sinkHits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(s.sink.Close)
	sfx := stacktest.Suffix()
	s.db, s.topic = "monitoring_"+sfx, "monitoring-events-"+sfx
	topicNames := []string{s.topic, "monitoring-dlq-" + sfx, "monitoring-settings-" + sfx, "monitoring-fdlq-" + sfx, "monitoring-checkpoints-" + sfx}
	skey, vkey, err := note.GenerateKey(rand.Reader, "monitoring.audittrail.test")
	require.NoError(t, err)
	s.env = []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + topicNames[0], "AUDITTRAIL_WRITER_DLQ_TOPIC=" + topicNames[1],
		"AUDITTRAIL_SETTINGS_TOPIC=" + topicNames[2], "AUDITTRAIL_FORWARDER_DLQ_TOPIC=" + topicNames[3],
		"AUDITTRAIL_WRITER_GROUP=monitoring-writer-" + sfx, "AUDITTRAIL_FORWARDER_GROUP=monitoring-forwarder-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + s.db,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort, "AUDITTRAIL_FORWARDER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort, "AUDITTRAIL_API_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken, "AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + s.sink.Listener.Addr().String(),
		"AUDITTRAIL_SEALER_ADDR=" + proctest.AnyPort, "AUDITTRAIL_SEALER_GROUP=monitoring-sealer-" + sfx,
		"AUDITTRAIL_CHECKPOINTS_TOPIC=" + topicNames[4], "AUDITTRAIL_CHECKPOINT_INTERVAL=1s",
		"AUDITTRAIL_SIGNING_KEY=" + skey, "AUDITTRAIL_VERIFIER_KEYS=" + vkey,
	}
	dropAtCleanup(t, s.db, topicNames...)
	s.chProxy = stacktest.NewProxy(t, config.ClickHouseAddr.Get(config.FromOS()))
	procs := map[string]*proctest.Process{}
	for _, name := range services {
		env := s.env
		if name == "writer" {
			env = append(env[:len(env):len(env)], "AUDITTRAIL_CLICKHOUSE_ADDR="+s.chProxy.Addr())
		}
		procs[name] = start(t, name, bins[name], env)
	}
	for _, name := range services {
		s.addrs[name], err = procs[name].Ready(context.Background(), "http", 60*time.Second)
		require.NoError(t, err, name)
	}
	// The commands run later (status, the runbook's) read the addresses
	// the services chose.
	for i, kv := range s.env {
		if v, ok := strings.CutSuffix(kv, "_ADDR="+proctest.AnyPort); ok {
			name := strings.ToLower(strings.TrimPrefix(v, "AUDITTRAIL_"))
			require.Contains(t, s.addrs, name)
			s.env[i] = v + "_ADDR=" + s.addrs[name]
		}
	}
	return s
}

// start runs bin with env (over this process's environment, without its
// AUDITTRAIL_* variables) until the test ends; its logs are printed when
// the test failed.
func start(t *testing.T, name, bin string, env []string) *proctest.Process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(processEnv(), env...)
	p, err := proctest.Start(cmd)
	require.NoError(t, err)
	t.Cleanup(func() {
		if !p.Stop(syscall.SIGTERM, 30*time.Second) {
			t.Errorf("%s did not exit within 30 s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, p.Out.String())
		}
	})
	return p
}

// processEnv is this process's environment without AUDITTRAIL_* variables
// other than those naming the shared servers.
func processEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUDITTRAIL_") || strings.HasPrefix(kv, "AUDITTRAIL_KAFKA_BROKERS=") ||
			strings.HasPrefix(kv, "AUDITTRAIL_CLICKHOUSE_ADDR=") {
			out = append(out, kv)
		}
	}
	return out
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

// do sends one request and returns the status and body.
func do(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// batch is an ingest body of n events of workspace ws with ids prefix-i.
func batch(ws, prefix string, n int, at time.Time) string {
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`{"id": "%s-%03d", "workspace_id": %q, "event": "Source Created", "timestamp": %q,
			"actor": {"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource": {"id": "src_%d", "name": "Web"}}`, prefix, i, ws, at.Format(time.RFC3339Nano), i)
	}
	return `{"batch": [` + strings.Join(events, ",") + `]}`
}

// exercise makes every service export its labelled series: accepted,
// refused and duplicate events, a record that is not an event (the
// writer's dead letters), a workspace forwarding to a target that refuses
// everything (the forwarder's), reads and a CSV export.
func (s *stack) exercise(t *testing.T) {
	t.Helper()
	ingest, api := "http://"+s.addrs["ingest"], "http://"+s.addrs["api"]
	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_mon": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		code, _ := do(t, http.MethodGet, api+"/v1/workspaces/ws_mon/forwarding", tok, "")
		return code == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "settings loaded")
	code, body := do(t, http.MethodPut, api+"/v1/workspaces/ws_mon/forwarding", tok,
		fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": "monitoring-write-key-1234"}}`, s.sink.URL))
	require.Equal(t, http.StatusOK, code, body)

	now := time.Now().UTC()
	for _, b := range []string{batch("ws_mon", "mon", 10, now), batch("ws_other", "other", 10, now), batch("ws_mon", "mon", 10, now)} {
		code, body = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, b)
		require.Equal(t, http.StatusAccepted, code, body)
	}
	code, _ = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [{"id": ""}]}`)
	require.Equal(t, http.StatusBadRequest, code)
	s.producePoison(t)

	require.Eventually(t, func() bool {
		n, _, _ := proctest.Metric(context.Background(), s.addrs["writer"], "audittrail_writer_rows_inserted_total")
		return n >= 20
	}, 60*time.Second, 100*time.Millisecond, "events stored")
	require.Eventually(t, func() bool {
		n, _, _ := proctest.Metric(context.Background(), s.addrs["sealer"], "audittrail_sealer_checkpoints_total")
		return n >= 1
	}, 60*time.Second, 100*time.Millisecond, "a checkpoint signed")
	code, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_mon/audit-events?limit=5", tok, "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_mon/audit-events.csv", tok, "")
	require.Equal(t, http.StatusOK, code, body)
	for addr, name := range map[string]string{
		s.addrs["writer"]:    "audittrail_writer_dead_letters_total",
		s.addrs["forwarder"]: "audittrail_forwarder_dead_letters_total",
	} {
		require.Eventually(t, func() bool {
			n, _, _ := proctest.Metric(context.Background(), addr, name)
			return n > 0
		}, 60*time.Second, 100*time.Millisecond, name)
	}
	require.Positive(t, s.sinkHits.Load(), "the target was called")
}

// producePoison publishes a record that is not an event to the events topic.
func (s *stack) producePoison(t *testing.T) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: s.topic, Key: []byte("ws_mon"), Value: []byte("not an event")}).FirstErr())
}

// scrape returns the series names a service's /metrics exposes (histograms
// as their _bucket, _count and _sum series) with the families' samples.
func scrape(t *testing.T, addr string) map[string][]*model.Sample {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	dec := expfmt.NewDecoder(resp.Body, expfmt.NewFormat(expfmt.TypeTextPlain))
	var vec model.Vector
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		v, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, &mf)
		require.NoError(t, err)
		vec = append(vec, v...)
	}
	out := map[string][]*model.Sample{}
	for _, smp := range vec {
		name := string(smp.Metric[model.MetricNameLabel])
		out[name] = append(out[name], smp)
	}
	return out
}

// hostPort splits addr, failing the test when it is not host:port.
func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return h, p
}
