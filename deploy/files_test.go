package deploy

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/audittrail/audittrail/internal/config"
)

// The files these tests read, relative to deploy/.
const (
	kubernetesDir  = "kubernetes"
	composeFile    = "compose/compose.yaml"
	dockerfile     = "docker/Dockerfile"
	kafkaProdDir   = "kafka/production"
	topicsScript   = "kafka/production/create-topics.sh"
	clusterSample  = "clickhouse/cluster"
	localNodeXML   = "clickhouse/cluster/local/node.xml"
	secretExample  = "secret.example.yaml"
	kustomization  = "kustomization.yaml"
	configMapName  = "audittrail"
	secretName     = "audittrail"
	binaryDir      = "/usr/local/bin/"
	auditPartsName = "audit-events"
)

// ---------------------------------------------------------------- YAML

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []*yaml.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s does not parse", path)
		docs = append(docs, &n)
	}
	require.NotEmpty(t, docs, "%s is empty", path)
	return docs
}

func TestEveryYAMLFileParses(t *testing.T) {
	n := 0
	require.NoError(t, filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		for _, doc := range yamlDocs(t, path) {
			var m map[string]any
			require.NoError(t, doc.Decode(&m), path)
			require.NotEmpty(t, m, "%s holds an empty document", path)
		}
		n++
		return nil
	}))
	require.GreaterOrEqual(t, n, 8, "the compose file and the Kubernetes manifests are found")
}

// Kubernetes objects, the fields the tests look at.
type (
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		EnvFrom []struct {
			ConfigMapRef *struct {
				Name string `yaml:"name"`
			} `yaml:"configMapRef"`
			SecretRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Env            []envVar `yaml:"env"`
		ReadinessProbe *probe   `yaml:"readinessProbe"`
		LivenessProbe  *probe   `yaml:"livenessProbe"`
		StartupProbe   *probe   `yaml:"startupProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		Spec       yaml.Node         `yaml:"spec"`

		file string
	}
	workloadSpec struct {
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	}
	serviceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	hpaSpec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	}
	pdbSpec struct {
		Selector labelSelector `yaml:"selector"`
	}
)

// manifests returns every object of deploy/kubernetes, including the
// example Secret.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	require.NoError(t, err)
	var out []object
	for _, f := range files {
		if filepath.Base(f) == kustomization {
			continue
		}
		for _, doc := range yamlDocs(t, f) {
			var o object
			require.NoError(t, doc.Decode(&o), f)
			require.NotEmpty(t, o.APIVersion, "%s: apiVersion", f)
			require.NotEmpty(t, o.Kind, "%s: kind", f)
			require.NotEmpty(t, o.Metadata.Name, "%s: metadata.name", f)
			o.file = filepath.Base(f)
			out = append(out, o)
		}
	}
	return out
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q in deploy/kubernetes", kind, name)
	return object{}
}

func workload(t *testing.T, o object) workloadSpec {
	t.Helper()
	var w workloadSpec
	require.NoError(t, o.Spec.Decode(&w), "%s %s", o.Kind, o.Metadata.Name)
	return w
}

func isWorkload(kind string) bool {
	return kind == "Deployment" || kind == "StatefulSet" || kind == "Job"
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// knownVariable reports whether a container may set name: a configuration
// variable of internal/config, or one of the Go runtime's.
func knownVariable(name string) bool {
	if name == "GOMEMLIMIT" {
		return true
	}
	for _, v := range config.Variables {
		if v.Name == name {
			return true
		}
	}
	return false
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
		} `yaml:"images"`
	}
	require.NoError(t, yamlDocs(t, filepath.Join(kubernetesDir, kustomization))[0].Decode(&k))
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	require.NoError(t, err)
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != kustomization && b != secretExample {
			want = append(want, b)
		}
	}
	got := append([]string{}, k.Resources...)
	sort.Strings(got)
	require.Equal(t, want, got, "kustomization.yaml lists every manifest (but not the example Secret)")
	require.Len(t, k.Images, 1)
	for _, o := range manifests(t) {
		if isWorkload(o.Kind) {
			for _, c := range workload(t, o).Template.Spec.Containers {
				require.Equal(t, k.Images[0].Name, c.Image, "%s uses the image kustomize replaces", o.Metadata.Name)
			}
		}
	}
}

func TestKubernetesEnvironmentUsesKnownVariables(t *testing.T) {
	objs := manifests(t)
	cm := find(t, objs, "ConfigMap", configMapName)
	secret := find(t, objs, "Secret", secretName)
	require.NotEmpty(t, cm.Data)
	for k := range cm.Data {
		require.True(t, knownVariable(k), "ConfigMap key %s is not a configuration variable (internal/config)", k)
	}
	for k := range secret.StringData {
		require.True(t, knownVariable(k), "Secret key %s is not a configuration variable", k)
	}
	containers := 0
	for _, o := range objs {
		if !isWorkload(o.Kind) {
			continue
		}
		for _, c := range workload(t, o).Template.Spec.Containers {
			containers++
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					require.Equal(t, configMapName, ef.ConfigMapRef.Name, "%s reads a ConfigMap that exists", c.Name)
				}
				require.Nil(t, ef.SecretRef, "%s: name the secret keys each container needs (secretKeyRef)", c.Name)
			}
			seen := map[string]bool{}
			for _, e := range c.Env {
				require.True(t, knownVariable(e.Name), "%s sets %s, which no component reads", c.Name, e.Name)
				require.False(t, seen[e.Name], "%s sets %s twice", c.Name, e.Name)
				seen[e.Name] = true
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					require.Equal(t, secretName, ref.Name, "%s: %s", c.Name, e.Name)
					require.Contains(t, secret.StringData, ref.Key, "%s: secret key %s is in secret.example.yaml", c.Name, ref.Key)
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					require.Contains(t, cm.Data, e.ValueFrom.ConfigMapKeyRef.Key, "%s: %s", c.Name, e.Name)
				}
			}
			// Secrets never sit in the ConfigMap or in plain values.
			for _, s := range []string{"AUDITTRAIL_INGEST_TOKENS", "AUDITTRAIL_JWT_SECRET", "AUDITTRAIL_CLICKHOUSE_PASSWORD",
				"AUDITTRAIL_SIGNING_KEY", "AUDITTRAIL_MANIFEST_SIGNING_KEY"} {
				require.NotContains(t, cm.Data, s)
				for _, e := range c.Env {
					if e.Name == s {
						require.NotNil(t, e.ValueFrom, "%s: %s comes from the Secret", c.Name, s)
						require.NotNil(t, e.ValueFrom.SecretKeyRef, "%s: %s comes from the Secret", c.Name, s)
					}
				}
			}
		}
	}
	require.GreaterOrEqual(t, containers, 5)
}

// component ties a manifest to the binary it runs.
type component struct {
	workload, kind, binary, addrVar string
	// addrDecl is addrVar's declaration in internal/config.
	addrDecl string
	// sources are the files (repository-relative) where the binary reads
	// addrDecl and starts its HTTP server; the first is its main.go.
	sources []string
	hpa     bool
}

var components = []component{
	{"audittrail-ingest", "Deployment", "ingest", "AUDITTRAIL_INGEST_ADDR", "config.IngestAddr", []string{"producers/cmd/ingest/main.go", "producers/ingest/config.go"}, true},
	{"audittrail-writer", "StatefulSet", "writer", "AUDITTRAIL_WRITER_ADDR", "config.WriterAddr", []string{"consumers/cmd/writer/main.go"}, false},
	{"audittrail-forwarder", "Deployment", "forwarder", "AUDITTRAIL_FORWARDER_ADDR", "config.ForwarderAddr", []string{"consumers/cmd/forwarder/main.go"}, false},
	{"audittrail-sealer", "Deployment", "sealer", "AUDITTRAIL_SEALER_ADDR", "config.SealerAddr", []string{"consumers/cmd/sealer/main.go"}, false},
	{"audittrail-api", "Deployment", "api", "AUDITTRAIL_API_ADDR", "config.APIAddr", []string{"query-api/cmd/api/main.go", "query-api/cmd/api/config.go"}, true},
}

// envValue returns the value a container gives name, from its own env or
// the ConfigMap.
func envValue(c container, cm map[string]string, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, e.ValueFrom == nil
		}
	}
	v, ok := cm[name]
	return v, ok
}

// listenPort checks that addr is a listen address reachable from outside
// the pod or container and returns its port.
func listenPort(t *testing.T, what, addr string) int {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	require.Positive(t, i+1, "%s: %q is host:port", what, addr)
	host, port := addr[:i], addr[i+1:]
	require.Contains(t, []string{"", "0.0.0.0", "[::]"}, host, "%s=%q: listen on every interface, or probes and other pods cannot reach it", what, addr)
	p, err := strconv.Atoi(port)
	require.NoError(t, err, "%s=%q", what, addr)
	return p
}

// probePort resolves a probe's or Service's port (a number or a port name).
func probePort(t *testing.T, c container, n yaml.Node) int {
	t.Helper()
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: no port named %q", c.Name, n.Value)
	return 0
}

func TestKubernetesProbesMatchTheBinaries(t *testing.T) {
	objs := manifests(t)
	cm := find(t, objs, "ConfigMap", configMapName).Data
	root := repoRoot(t)
	for _, comp := range components {
		t.Run(comp.binary, func(t *testing.T) {
			o := find(t, objs, comp.kind, comp.workload)
			w := workload(t, o)
			require.Len(t, w.Template.Spec.Containers, 1)
			c := w.Template.Spec.Containers[0]
			require.Equal(t, []string{binaryDir + comp.binary}, c.Command)

			// The binary reads addrVar (through its declaration) and serves
			// /healthz and /readyz on it (httpserver.New registers both; see
			// TestHTTPServerServesProbes).
			v, ok := config.Lookup(comp.addrVar)
			require.True(t, ok, "%s is declared", comp.addrVar)
			require.Contains(t, strings.Split(v.Readers, ", "), comp.binary, "%s is documented as read by %s", comp.addrVar, comp.binary)
			main, err := os.ReadFile(filepath.Join(root, comp.sources[0]))
			require.NoError(t, err)
			require.Contains(t, string(main), "httpserver.New(", "%s starts the shared HTTP server", comp.sources[0])
			require.Contains(t, string(main), "httpserver.Serve(", comp.sources[0])
			reads := false
			for _, src := range comp.sources {
				b, err := os.ReadFile(filepath.Join(root, src))
				require.NoError(t, err)
				reads = reads || bytes.Contains(b, []byte(comp.addrDecl+".Get("))
			}
			require.True(t, reads, "%s reads %s (%s)", comp.binary, comp.addrVar, comp.addrDecl)

			addr, ok := envValue(c, cm, comp.addrVar)
			require.True(t, ok, "%s sets %s", comp.workload, comp.addrVar)
			port := listenPort(t, comp.addrVar, addr)
			require.Len(t, c.Ports, 1)
			require.Equal(t, "http", c.Ports[0].Name)
			require.Equal(t, port, c.Ports[0].ContainerPort, "containerPort is the port %s listens on", comp.addrVar)

			require.NotNil(t, c.ReadinessProbe, "readiness probe")
			require.NotNil(t, c.LivenessProbe, "liveness probe")
			for name, p := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if p == nil {
					continue
				}
				require.NotNil(t, p.HTTPGet, "%s probe is an HTTP GET", name)
				want := "/healthz"
				if name == "readiness" {
					want = "/readyz"
				}
				require.Equal(t, want, p.HTTPGet.Path, "%s probe path", name)
				require.Equal(t, port, probePort(t, c, p.HTTPGet.Port), "%s probe port", name)
			}
			require.Equal(t, strconv.Itoa(port), w.Template.Metadata.Annotations["prometheus.io/port"], "metrics are scraped from the listen port")
			require.True(t, subset(w.Selector.MatchLabels, w.Template.Metadata.Labels), "selector matches the pod labels")

			// Every Service in front of it reaches the same port.
			for _, s := range objs {
				if s.Kind != "Service" {
					continue
				}
				var spec serviceSpec
				require.NoError(t, s.Spec.Decode(&spec))
				if !subset(spec.Selector, w.Template.Metadata.Labels) {
					continue
				}
				for _, p := range spec.Ports {
					require.Equal(t, port, probePort(t, c, p.TargetPort), "Service %s targets the listen port", s.Metadata.Name)
				}
			}
		})
	}
}

func TestKubernetesScalingAndDisruption(t *testing.T) {
	objs := manifests(t)
	cm := find(t, objs, "ConfigMap", configMapName).Data
	partitions, err := strconv.Atoi(cm["AUDITTRAIL_KAFKA_PARTITIONS"])
	require.NoError(t, err)
	hpas := map[string]hpaSpec{}
	var pdbs []pdbSpec
	for _, o := range objs {
		switch o.Kind {
		case "HorizontalPodAutoscaler":
			var h hpaSpec
			require.NoError(t, o.Spec.Decode(&h))
			hpas[h.ScaleTargetRef.Kind+"/"+h.ScaleTargetRef.Name] = h
		case "PodDisruptionBudget":
			var p pdbSpec
			require.NoError(t, o.Spec.Decode(&p))
			pdbs = append(pdbs, p)
		}
	}
	for _, comp := range components {
		o := find(t, objs, comp.kind, comp.workload)
		w := workload(t, o)
		h, ok := hpas[comp.kind+"/"+comp.workload]
		require.Equal(t, comp.hpa, ok, "%s: HPA for the stateless HTTP services only; consumers are sized by partitions", comp.workload)
		if ok {
			require.GreaterOrEqual(t, h.MinReplicas, 2, "%s keeps two pods", comp.workload)
			require.Greater(t, h.MaxReplicas, h.MinReplicas)
		} else {
			require.NotNil(t, w.Replicas)
			require.LessOrEqual(t, *w.Replicas, partitions, "%s: no more consumers than partitions", comp.workload)
		}
		covered := 0
		for _, p := range pdbs {
			if subset(p.Selector.MatchLabels, w.Template.Metadata.Labels) {
				covered++
			}
		}
		require.Equal(t, 1, covered, "%s has one PodDisruptionBudget", comp.workload)
		c := w.Template.Spec.Containers[0]
		require.NotEmpty(t, c.Resources.Requests["cpu"], "%s requests CPU", comp.workload)
		require.NotEmpty(t, c.Resources.Requests["memory"], "%s requests memory", comp.workload)
		require.NotEmpty(t, c.Resources.Limits["memory"], "%s limits memory", comp.workload)
	}
	// Writers are static group members named after their pod.
	w := workload(t, find(t, objs, "StatefulSet", "audittrail-writer"))
	var id *envVar
	for i, e := range w.Template.Spec.Containers[0].Env {
		if e.Name == "AUDITTRAIL_WRITER_INSTANCE_ID" {
			id = &w.Template.Spec.Containers[0].Env[i]
		}
	}
	require.NotNil(t, id)
	require.NotNil(t, id.ValueFrom)
	require.NotNil(t, id.ValueFrom.FieldRef)
	require.Equal(t, "metadata.name", id.ValueFrom.FieldRef.FieldPath)
}

func TestMigrationJob(t *testing.T) {
	objs := manifests(t)
	w := workload(t, find(t, objs, "Job", "audittrail-migrate"))
	require.Len(t, w.Template.Spec.Containers, 1)
	c := w.Template.Spec.Containers[0]
	require.Equal(t, []string{binaryDir + "migrate"}, c.Command)
	_, ok := envValue(c, nil, "AUDITTRAIL_CLICKHOUSE_PASSWORD")
	require.False(t, ok, "the password comes from the Secret")
	names := map[string]bool{}
	for _, e := range c.Env {
		names[e.Name] = true
	}
	require.True(t, names["AUDITTRAIL_CLICKHOUSE_PASSWORD"])
	cm := find(t, objs, "ConfigMap", configMapName).Data
	require.NotEmpty(t, cm["AUDITTRAIL_CLICKHOUSE_CLUSTER"], "the manifests target the ClickHouse cluster")
}

// ---------------------------------------------------------------- image

// dockerBinaries returns the binaries the Dockerfile builds, by name, with
// their package directories.
func dockerBinaries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+\./(\S+/cmd/([\w-]+))`).FindAllStringSubmatch(string(b), -1) {
		out[m[2]] = m[1]
	}
	require.NotEmpty(t, out)
	return out
}

func TestDockerfileBuildsEveryCommandTheManifestsRun(t *testing.T) {
	root := repoRoot(t)
	bins := dockerBinaries(t)
	for name, dir := range bins {
		_, err := os.Stat(filepath.Join(root, dir, "main.go"))
		require.NoError(t, err, "%s is built from %s", name, dir)
	}
	var used []string
	for _, o := range manifests(t) {
		if isWorkload(o.Kind) {
			for _, c := range workload(t, o).Template.Spec.Containers {
				used = append(used, c.Command...)
			}
		}
	}
	for _, s := range composeFileServices(t) {
		used = append(used, s.Command...)
	}
	require.NotEmpty(t, used)
	for _, cmd := range used {
		require.True(t, strings.HasPrefix(cmd, binaryDir), cmd)
		require.Contains(t, bins, strings.TrimPrefix(cmd, binaryDir), "the image has %s", cmd)
	}
	ignore, err := os.ReadFile(dockerfile + ".dockerignore")
	require.NoError(t, err)
	for _, dir := range []string{"schemas", "internal", "producers", "consumers", "query-api"} {
		require.Contains(t, string(ignore), "!"+dir+"/", "the build context includes %s", dir)
	}
}

// ---------------------------------------------------------------- compose

type composeService struct {
	Image       string         `yaml:"image"`
	Build       map[string]any `yaml:"build"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func composeFileServices(t *testing.T) map[string]composeService {
	t.Helper()
	var c struct {
		Services map[string]composeService `yaml:"services"`
	}
	docs := yamlDocs(t, composeFile)
	require.Len(t, docs, 1)
	require.NoError(t, docs[0].Decode(&c))
	return c.Services
}

func TestComposeFile(t *testing.T) {
	svcs := composeFileServices(t)
	names := make([]string, 0, len(svcs))
	for n := range svcs {
		names = append(names, n)
	}
	sort.Strings(names)
	require.Equal(t, []string{"api", "clickhouse", "forwarder", "ingest", "kafka", "migrate", "sealer", "writer"}, names)
	require.True(t, strings.HasPrefix(svcs["kafka"].Image, "apache/kafka:"), "official Kafka image")
	require.True(t, strings.HasPrefix(svcs["clickhouse"].Image, "clickhouse/clickhouse-server:"), "official ClickHouse image")

	addrVars := map[string]string{}
	for _, c := range components {
		addrVars[c.binary] = c.addrVar
	}
	for name, s := range svcs {
		if name == "kafka" || name == "clickhouse" {
			continue
		}
		require.Equal(t, "deploy/docker/Dockerfile", s.Build["dockerfile"], "%s is built from the image Dockerfile", name)
		_, err := os.Stat(filepath.Join(repoRoot(t), s.Build["dockerfile"].(string)))
		require.NoError(t, err)
		require.Equal(t, []string{binaryDir + name}, s.Command)
		require.NotEmpty(t, s.Environment)
		for k, v := range s.Environment {
			require.True(t, knownVariable(k), "compose service %s sets %s, which no component reads", name, k)
			if k == "AUDITTRAIL_INGEST_TOKENS" || k == "AUDITTRAIL_JWT_SECRET" || k == "AUDITTRAIL_SIGNING_KEY" || k == "AUDITTRAIL_MANIFEST_SIGNING_KEY" {
				require.Regexp(t, `^\$\{`+k+`:\?`, v, "%s: %s must be given (from .env), never a fixed value", name, k)
			}
		}
		require.Equal(t, "clickhouse:9000", s.Environment["AUDITTRAIL_CLICKHOUSE_ADDR"], name)
		require.Equal(t, "kafka:9092", s.Environment["AUDITTRAIL_KAFKA_BROKERS"], name)
		if v, ok := addrVars[name]; ok {
			addr, _ := s.Environment[v].(string)
			port := strconv.Itoa(listenPort(t, name+" "+v, addr))
			require.Contains(t, s.Ports, "127.0.0.1:"+port+":"+port, "%s publishes the port %s listens on", name, v)
		}
		if name != "migrate" {
			require.Contains(t, s.DependsOn, "kafka", "%s waits for Kafka", name)
		}
	}
	require.Contains(t, svcs["ingest"].Environment, "AUDITTRAIL_INGEST_TOKENS")
	require.Contains(t, svcs["api"].Environment, "AUDITTRAIL_JWT_SECRET")
	for _, s := range []string{"writer", "api", "sealer"} {
		require.Equal(t, "service_completed_successfully", svcs[s].DependsOn["migrate"].Condition, "%s starts after the migration", s)
	}
	// Only the sealer holds the checkpoints' key; the API signs manifests
	// with its own.
	for name, s := range svcs {
		_, has := s.Environment["AUDITTRAIL_SIGNING_KEY"]
		require.Equal(t, name == "sealer", has, "%s and AUDITTRAIL_SIGNING_KEY", name)
	}
	require.Contains(t, svcs["api"].Environment, "AUDITTRAIL_MANIFEST_SIGNING_KEY")
	require.Equal(t, "service_healthy", svcs["migrate"].DependsOn["clickhouse"].Condition)
}

// ---------------------------------------------------------------- Kafka

// properties reads a Java properties file (key=value lines, # comments).
func properties(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q", path, line)
		_, dup := out[k]
		require.False(t, dup, "%s sets %s twice", path, k)
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	require.NoError(t, sc.Err())
	return out
}

func brokerFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kafkaProdDir, "broker-*.properties"))
	require.NoError(t, err)
	require.Len(t, files, 3, "three production brokers")
	return files
}

func TestKafkaProductionBrokers(t *testing.T) {
	cm := find(t, manifests(t), "ConfigMap", configMapName).Data
	var first map[string]string
	ids := map[string]bool{}
	var advertised []string
	for _, f := range brokerFiles(t) {
		p := properties(t, f)
		require.Equal(t, "3", p["default.replication.factor"], f)
		require.Equal(t, "2", p["min.insync.replicas"], f)
		require.Equal(t, "3", p["offsets.topic.replication.factor"], f)
		require.Equal(t, "3", p["transaction.state.log.replication.factor"], f)
		require.Equal(t, "2", p["transaction.state.log.min.isr"], f)
		require.Equal(t, "false", p["unclean.leader.election.enable"], f)
		require.Equal(t, "false", p["auto.create.topics.enable"], f)
		require.Equal(t, "broker,controller", p["process.roles"], f)
		require.NotContains(t, p, "zookeeper.connect", "KRaft only")

		voters := strings.Split(p["controller.quorum.voters"], ",")
		require.Len(t, voters, 3, "%s: three controller voters", f)
		id := p["node.id"]
		require.False(t, ids[id], "node.id %s used twice", id)
		ids[id] = true
		mine := ""
		for _, v := range voters {
			if vid, hostPort, _ := strings.Cut(v, "@"); vid == id {
				mine = hostPort
			}
		}
		require.NotEmpty(t, mine, "%s: node %s is a voter", f, id)
		listener, ok := strings.CutPrefix(p["advertised.listeners"], "PLAINTEXT://")
		require.True(t, ok, f)
		require.Equal(t, strings.Split(mine, ":")[0], strings.Split(listener, ":")[0], "%s advertises the host it votes from", f)
		advertised = append(advertised, listener)

		// The three files differ only in their identity.
		same := map[string]string{}
		for k, v := range p {
			if k != "node.id" && k != "advertised.listeners" {
				same[k] = v
			}
		}
		if first == nil {
			first = same
		} else {
			require.Equal(t, first, same, "%s differs from broker-1 beyond node.id and advertised.listeners", f)
		}
	}
	require.Equal(t, advertised, strings.Split(cm["AUDITTRAIL_KAFKA_BROKERS"], ","), "the services bootstrap from the three brokers")
}

// topicSpec is one `topic` line of create-topics.sh.
type topicSpec struct {
	partitions int
	configs    map[string]string
}

func topicSpecs(t *testing.T) (map[string]topicSpec, string) {
	t.Helper()
	b, err := os.ReadFile(topicsScript)
	require.NoError(t, err)
	script := strings.ReplaceAll(string(b), "\\\n", " ")
	out := map[string]topicSpec{}
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "topic" {
			continue
		}
		n, err := strconv.Atoi(f[2])
		require.NoError(t, err, line)
		spec := topicSpec{partitions: n, configs: map[string]string{}}
		for _, c := range f[3:] {
			k, v, ok := strings.Cut(c, "=")
			require.True(t, ok, "%s: config %q", f[1], c)
			spec.configs[k] = v
		}
		_, dup := out[f[1]]
		require.False(t, dup, "topic %s twice", f[1])
		out[f[1]] = spec
	}
	rf := regexp.MustCompile(`(?m)^replication_factor=(\d+)$`).FindStringSubmatch(script)
	require.NotNil(t, rf, "create-topics.sh sets replication_factor")
	return out, rf[1]
}

func defaultOf(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Variables {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("%s is not a configuration variable", name)
	return ""
}

func TestKafkaProductionTopics(t *testing.T) {
	specs, rf := topicSpecs(t)
	require.Equal(t, "3", rf, "replication factor 3")
	cm := find(t, manifests(t), "ConfigMap", configMapName).Data
	// The topic names are the product's (schemas/topics via the defaults of
	// internal/config) and the manifests', one line each.
	names := map[string]string{
		"AUDITTRAIL_KAFKA_TOPIC":         "delete",
		"AUDITTRAIL_WRITER_DLQ_TOPIC":    "delete",
		"AUDITTRAIL_FORWARDER_DLQ_TOPIC": "delete",
		"AUDITTRAIL_SETTINGS_TOPIC":      "compact",
		"AUDITTRAIL_CREDENTIALS_TOPIC":   "compact",
		"AUDITTRAIL_CHECKPOINTS_TOPIC":   "compact",
	}
	require.Len(t, specs, len(names))
	for v, policy := range names {
		topic := defaultOf(t, v)
		require.Equal(t, topic, cm[v], "the ConfigMap names the same topic for %s", v)
		spec, ok := specs[topic]
		require.True(t, ok, "create-topics.sh creates %s (%s)", topic, v)
		require.Equal(t, policy, spec.configs["cleanup.policy"], topic)
		require.Equal(t, "2", spec.configs["min.insync.replicas"], topic)
		require.Equal(t, "false", spec.configs["unclean.leader.election.enable"], topic)
		if policy == "delete" {
			ms, err := strconv.ParseInt(spec.configs["retention.ms"], 10, 64)
			require.NoError(t, err, "%s has retention.ms", topic)
			min := int64(30 * 24 * 3600 * 1000) // dead letters wait for someone to look
			if v == "AUDITTRAIL_KAFKA_TOPIC" {
				min = 7 * 24 * 3600 * 1000 // a writer outage of a week loses nothing
			}
			require.GreaterOrEqual(t, ms, min, "%s retention", topic)
		}
	}
	events := specs[defaultOf(t, "AUDITTRAIL_KAFKA_TOPIC")]
	require.Equal(t, strconv.Itoa(events.partitions), cm["AUDITTRAIL_KAFKA_PARTITIONS"],
		"AUDITTRAIL_KAFKA_PARTITIONS matches the events topic")
	settings := specs[defaultOf(t, "AUDITTRAIL_SETTINGS_TOPIC")]
	require.Equal(t, 1, settings.partitions, "the settings topic has one partition, like internal/kvtopic creates it")
	for k, v := range settingsTopicConfigs() {
		require.Equal(t, v, settings.configs[k], "settings topic %s as internal/kvtopic sets it", k)
	}
	creds := specs[defaultOf(t, "AUDITTRAIL_CREDENTIALS_TOPIC")]
	require.Equal(t, 1, creds.partitions, "the credentials topic has one partition, like internal/kvtopic creates it")
	for k, v := range settingsTopicConfigs() {
		require.Equal(t, v, creds.configs[k], "credentials topic %s as internal/kvtopic sets it", k)
	}
}

// ---------------------------------------------------------------- ClickHouse

// element is a parsed XML element.
type element struct {
	name     string
	text     string
	children []*element
}

func (e *element) child(name string) *element {
	for _, c := range e.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (e *element) all(name string) []*element {
	var out []*element
	for _, c := range e.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// path follows child names from e; nil when one is missing.
func (e *element) path(names ...string) *element {
	for _, n := range names {
		if e == nil {
			return nil
		}
		e = e.child(n)
	}
	return e
}

func parseXML(t *testing.T, path string) *element {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := xml.NewDecoder(f)
	var stack []*element
	var root *element
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s is not well-formed XML", path)
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, e)
			} else {
				require.Nil(t, root, "%s has one root element", path)
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += strings.TrimSpace(string(tok))
			}
		}
	}
	require.NotNil(t, root, path)
	return root
}

func TestEveryXMLFileParses(t *testing.T) {
	n := 0
	require.NoError(t, filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".xml") {
			parseXML(t, path)
			n++
		}
		return err
	}))
	require.GreaterOrEqual(t, n, 7)
}

func TestClickHouseClusterSample(t *testing.T) {
	cm := find(t, manifests(t), "ConfigMap", configMapName).Data
	cfg := parseXML(t, filepath.Join(clusterSample, "config.d", "audittrail-cluster.xml"))
	cluster := cfg.path("remote_servers", cm["AUDITTRAIL_CLICKHOUSE_CLUSTER"])
	require.NotNil(t, cluster, "remote_servers defines the cluster the ConfigMap names (%s)", cm["AUDITTRAIL_CLICKHOUSE_CLUSTER"])
	shards := cluster.all("shard")
	require.GreaterOrEqual(t, len(shards), 2)
	for i, s := range shards {
		require.Equal(t, "true", s.path("internal_replication").text, "shard %d: Replicated tables replicate themselves", i+1)
		require.GreaterOrEqual(t, len(s.all("replica")), 2, "shard %d has two replicas", i+1)
	}
	require.NotNil(t, cfg.path("distributed_ddl", "path"), "ON CLUSTER needs the distributed DDL queue")

	keeper := parseXML(t, filepath.Join(clusterSample, "keeper", "keeper.xml")).child("keeper_server")
	require.NotNil(t, keeper)
	var raftHosts, zkHosts []string
	for _, s := range keeper.path("raft_configuration").all("server") {
		raftHosts = append(raftHosts, s.path("hostname").text)
	}
	for _, n := range cfg.path("zookeeper").all("node") {
		zkHosts = append(zkHosts, n.path("host").text)
		require.Equal(t, keeper.path("tcp_port").text, n.path("port").text, "ClickHouse connects to the Keeper client port")
	}
	require.Len(t, zkHosts, 3, "a three-node quorum")
	require.Equal(t, raftHosts, zkHosts)

	macros := parseXML(t, filepath.Join(clusterSample, "config.d", "macros.xml")).child("macros")
	require.NotEmpty(t, macros.path("shard").text)
	require.NotEmpty(t, macros.path("replica").text)
	hosts := map[string]bool{}
	for _, s := range shards {
		for _, r := range s.all("replica") {
			hosts[r.path("host").text] = true
		}
	}
	require.True(t, hosts[macros.path("replica").text], "the sample macros name a host of the cluster as the (cluster-wide unique) replica")

	users := parseXML(t, filepath.Join(clusterSample, "users.d", "audittrail.xml"))
	require.NotNil(t, users.path("users", cm["AUDITTRAIL_CLICKHOUSE_USER"]), "the user the ConfigMap names")
	profile := users.path("users", cm["AUDITTRAIL_CLICKHOUSE_USER"], "profile").text
	require.Equal(t, "1", users.path("profiles", profile, "optimize_skip_unused_shards").text)

	// The local check's nodes define the cluster the integration test uses.
	local := parseXML(t, localNodeXML)
	require.Len(t, local.path("remote_servers", clusterName).all("shard"), 2)
	require.NotNil(t, local.path("macros", "shard"))
	require.NotNil(t, local.path("zookeeper", "node"))
}
