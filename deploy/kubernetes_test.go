package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/audittrail/audittrail/internal/config"
)

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
