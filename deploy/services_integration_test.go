package deploy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
)

const (
	testIngestToken = "deploy-ingest-token-0123456789abcdef"
	testJWTSecret   = "deploy-jwt-secret-0123456789abcdef0123456789"
)

// quantityBytes converts a Kubernetes memory quantity such as "512Mi" to
// bytes, as a resourceFieldRef would.
func quantityBytes(t *testing.T, q string) string {
	t.Helper()
	for suffix, mult := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			require.NoError(t, err, q)
			return strconv.FormatInt(v*mult, 10)
		}
	}
	t.Fatalf("memory quantity %q: use Ki, Mi or Gi", q)
	return ""
}

// manifestEnv is the environment Kubernetes would give container c of the
// named workload: the ConfigMap, then the container's own variables
// (secrets from secrets, the pod name as <workload>-0), then overrides,
// which point it at this machine's servers and the test's names.
// noteKey returns a new note signer key and its verifier key.
func noteKey(t *testing.T, name string) (string, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	require.NoError(t, err)
	return skey, vkey
}

func manifestEnv(t *testing.T, cm map[string]string, name string, c container, secrets, overrides map[string]string) []string {
	t.Helper()
	env := map[string]string{}
	for k, v := range cm {
		env[k] = v
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			v, ok := secrets[e.ValueFrom.SecretKeyRef.Key]
			require.True(t, ok, "test value for secret %s", e.ValueFrom.SecretKeyRef.Key)
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = name + "-0"
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			env[e.Name] = quantityBytes(t, c.Resources.Limits["memory"])
		default:
			t.Fatalf("%s: %s comes from an unsupported source", name, e.Name)
		}
	}
	for k, v := range overrides {
		env[k] = v
	}
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUDITTRAIL_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// proc is a running binary.
type proc struct {
	name string
	logs proctest.Output
	done chan struct{} // closed when it exited
	err  error         // its exit status, once done is closed
}

// run starts bin with env and stops it (SIGTERM) at cleanup, printing its
// logs when the test failed.
func run(t *testing.T, name, bin string, env []string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			t.Errorf("%s exited before the test ended: %v", name, p.err)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
				require.NoError(t, p.err, "%s exits cleanly on SIGTERM", name)
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
				t.Errorf("%s did not exit within 30 s of SIGTERM", name)
			}
		}
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, p.logs.String())
		}
	})
	return p
}

// running reports whether p has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func get(url, token string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestManifestServicesOnTheCluster runs the ingest gateway, the writer, the
// forwarder and the API with the environment the Kubernetes manifests give
// them (the
// ConfigMap, including AUDITTRAIL_CLICKHOUSE_CLUSTER=audit, and each
// container's variables), changing only server addresses, listen ports and
// the names of topics, groups and database. Events posted to the gateway
// must become readable through the API, stored through the Distributed
// table on both shards of the local cluster; every probe the manifests use
// must answer 200.
func TestManifestServicesOnTheCluster(t *testing.T) {
	proctest.Require(t)
	clusterUp(t)
	objs := manifests(t)
	cm := find(t, objs, "ConfigMap", configMapName).Data
	require.Equal(t, clusterName, cm["AUDITTRAIL_CLICKHOUSE_CLUSTER"], "the manifests' cluster is the local one's")

	bins, err := proctest.Build(t.TempDir(), "producers/cmd/ingest", "consumers/cmd/writer", "consumers/cmd/forwarder", "consumers/cmd/sealer", "query-api/cmd/api", "consumers/cmd/migrate")
	require.NoError(t, err)

	sfx := stacktest.Suffix()
	db := "deploy_" + sfx
	topicNames := map[string]string{
		"AUDITTRAIL_KAFKA_TOPIC":         "deploy-events-" + sfx,
		"AUDITTRAIL_WRITER_DLQ_TOPIC":    "deploy-dlq-" + sfx,
		"AUDITTRAIL_FORWARDER_DLQ_TOPIC": "deploy-fdlq-" + sfx,
		"AUDITTRAIL_SETTINGS_TOPIC":      "deploy-settings-" + sfx,
		"AUDITTRAIL_CHECKPOINTS_TOPIC":   "deploy-checkpoints-" + sfx,
	}
	t.Cleanup(func() {
		conn := openNode(t, node1, db)
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+clusterName); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			names := make([]string, 0, len(topicNames))
			for _, n := range topicNames {
				names = append(names, n)
			}
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, names...)
			cl.Close()
		}
	})
	// The integrity log's keys, as the Secret and the ConfigMap hold them
	// (the ConfigMap's verifier keys are placeholders to replace).
	cpSigner, cpVerifier := noteKey(t, "deploy.audittrail.test")
	mSigner, mVerifier := noteKey(t, "manifests.deploy.audittrail.test")
	secrets := map[string]string{
		"AUDITTRAIL_INGEST_TOKENS":        testIngestToken,
		"AUDITTRAIL_JWT_SECRET":           testJWTSecret,
		"AUDITTRAIL_CLICKHOUSE_PASSWORD":  "",
		"AUDITTRAIL_SIGNING_KEY":          cpSigner,
		"AUDITTRAIL_MANIFEST_SIGNING_KEY": mSigner,
	}
	base := map[string]string{
		"AUDITTRAIL_KAFKA_BROKERS":       strings.Join(stacktest.Brokers(), ","),
		"AUDITTRAIL_CLICKHOUSE_DATABASE": db,
		"AUDITTRAIL_CLICKHOUSE_USER":     "default",
		"AUDITTRAIL_WRITER_GROUP":        "deploy-writer-" + sfx,
		"AUDITTRAIL_FORWARDER_GROUP":     "deploy-forwarder-" + sfx,
		"AUDITTRAIL_SEALER_GROUP":        "deploy-sealer-" + sfx,
		// A checkpoint every second instead of every minute.
		"AUDITTRAIL_CHECKPOINT_INTERVAL":    "1s",
		"AUDITTRAIL_VERIFIER_KEYS":          cpVerifier,
		"AUDITTRAIL_MANIFEST_VERIFIER_KEYS": mVerifier,
	}
	for k, v := range topicNames {
		base[k] = v
	}
	urls := map[string]string{}
	procs := map[string]*proc{}
	// The writer writes through node1, the API reads through node2.
	chAddr := map[string]string{"ingest": node1, "writer": node1, "forwarder": node1, "sealer": node2, "api": node2}
	kinds := map[string]string{}
	// The migration Job first, as on Kubernetes: the services then find
	// the schema applied instead of migrating a new database at once.
	job := workload(t, find(t, objs, "Job", "audittrail-migrate")).Template.Spec.Containers[0]
	overrides := map[string]string{"AUDITTRAIL_CLICKHOUSE_ADDR": node1}
	for k, v := range base {
		overrides[k] = v
	}
	migrate := exec.Command(bins["migrate"])
	migrate.Env = manifestEnv(t, cm, "audittrail-migrate", job, secrets, overrides)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "the migration Job: %s", out)
	for _, comp := range components {
		kinds[comp.binary] = comp.kind
		w := workload(t, find(t, objs, comp.kind, comp.workload))
		c := w.Template.Spec.Containers[0]
		// Each listens on a port of its choosing, which it logs.
		overrides := map[string]string{comp.addrVar: proctest.AnyPort, "AUDITTRAIL_CLICKHOUSE_ADDR": chAddr[comp.binary]}
		for k, v := range base {
			overrides[k] = v
		}
		p := run(t, comp.binary, bins[comp.binary], manifestEnv(t, cm, comp.workload, c, secrets, overrides))
		addr, err := p.logs.Addr(context.Background(), "http", 90*time.Second, p.done)
		require.NoError(t, err, "%s\n%s", comp.binary, p.logs.String())
		procs[comp.binary], urls[comp.binary] = p, "http://"+addr
	}
	for name, u := range urls {
		w := workload(t, find(t, objs, kinds[name], "audittrail-"+name))
		c := w.Template.Spec.Containers[0]
		for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			ok := func() bool {
				code, _, err := get(u+p.HTTPGet.Path, "")
				return err == nil && code == http.StatusOK
			}
			// Stop waiting as soon as the binary exits (e.g. rejected its
			// configuration).
			require.Eventually(t, func() bool { return !procs[name].running() || ok() }, 90*time.Second, 200*time.Millisecond,
				"%s %s: no 200 within 90 s", name, p.HTTPGet.Path)
			require.True(t, procs[name].running(), "%s exited: %v\n%s", name, procs[name].err, procs[name].logs.String())
			require.True(t, ok(), "%s %s", name, p.HTTPGet.Path)
		}
	}

	// Events of several workspaces through the gateway.
	now := time.Now().UTC()
	const workspaces, each = 8, 5
	roles := map[string]string{}
	var batch []string
	for w := range workspaces {
		ws := fmt.Sprintf("ws_deploy_%d", w)
		roles[ws] = "owner"
		for i := range each {
			batch = append(batch, fmt.Sprintf(`{"id": "evt-%d-%d", "workspace_id": %q, "event": "Warehouses Disabled",
				"timestamp": %q, "actor": {"type": "user", "id": "usr_1", "name": "Alice"}, "resource": {"id": "wh_1"}}`,
				w, i, ws, now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano)))
		}
	}
	req, err := http.NewRequest(http.MethodPost, urls["ingest"]+"/v1/events", strings.NewReader(`{"batch": [`+strings.Join(batch, ",")+`]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testIngestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))

	tok, err := auth.Mint([]byte(testJWTSecret), "usr_owner", "Owner", "owner@example.com", roles, time.Hour, now)
	require.NoError(t, err)
	for ws := range roles {
		require.Eventually(t, func() bool {
			code, body, err := get(urls["api"]+"/v1/workspaces/"+ws+"/audit-events?limit=100", tok)
			if err != nil || code != http.StatusOK {
				return false
			}
			var page struct {
				Data []struct {
					WorkspaceID string `json:"workspace_id"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(body, &page))
			return len(page.Data) == each
		}, 60*time.Second, 250*time.Millisecond, "the API shows %s's events", ws)
	}
	// The sealer signs each workspace's log on the cluster, and the API
	// serves the checkpoint (the manifests' keys are the ConfigMap's and
	// the Secret's).
	for ws := range roles {
		require.Eventually(t, func() bool {
			code, body, err := get(urls["api"]+"/v1/workspaces/"+ws+"/log/checkpoint", tok)
			var cp struct{ Size int }
			return err == nil && code == http.StatusOK && json.Unmarshal(body, &cp) == nil && cp.Size == each
		}, 60*time.Second, 250*time.Millisecond, "a signed checkpoint of %s's %d events", ws, each)
	}
	a, b := openNode(t, node1, db), openNode(t, node2, db)
	onA, onB := workspacesOn(t, a, db), workspacesOn(t, b, db)
	require.Len(t, append(onA, onB...), workspaces, "every workspace stored on one shard: %v / %v", onA, onB)
	require.NotEmpty(t, onA)
	require.NotEmpty(t, onB)
}
