package deploy

import (
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

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
