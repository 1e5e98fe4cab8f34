package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

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
