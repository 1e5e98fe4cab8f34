package deploy

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
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
