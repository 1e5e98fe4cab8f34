package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
)

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
