package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// scriptTopics runs create-topics.sh with a stand-in kafka-topics.sh that
// records its arguments, and returns what the script would create.
func scriptTopics(t *testing.T) map[string]topicSpec {
	t.Helper()
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	shim := "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" >>" + calls + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "kafka-topics.sh"), []byte(shim), 0o755))
	cmd := exec.Command("bash", topicsScript, "kafka-1.audittrail.internal:9092")
	cmd.Env = append(os.Environ(), "KAFKA_BIN="+bin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(calls)
	require.NoError(t, err)
	specs := map[string]topicSpec{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		args := strings.Fields(line)
		flag := func(name string) string {
			for i, a := range args {
				if a == name && i+1 < len(args) {
					return args[i+1]
				}
			}
			return ""
		}
		require.Contains(t, args, "--create", line)
		require.Contains(t, args, "--if-not-exists", "running the script again is harmless: %s", line)
		require.Equal(t, "kafka-1.audittrail.internal:9092", flag("--bootstrap-server"))
		require.Equal(t, "3", flag("--replication-factor"), line)
		n, err := strconv.Atoi(flag("--partitions"))
		require.NoError(t, err, line)
		spec := topicSpec{partitions: n, configs: map[string]string{}}
		for i, a := range args {
			if a == "--config" {
				k, v, _ := strings.Cut(args[i+1], "=")
				spec.configs[k] = v
			}
		}
		specs[flag("--topic")] = spec
	}
	return specs
}

// TestCreateTopicsScript runs the script (against a stand-in for Kafka's
// kafka-topics.sh) and checks it creates what TestKafkaProductionTopics
// read from it.
func TestCreateTopicsScript(t *testing.T) {
	parsed, _ := topicSpecs(t)
	require.Equal(t, parsed, scriptTopics(t))
}

// TestProductionTopicConfigsOnTheBroker creates the production topics with
// their configs (under test names, replication factor 1: the local broker is
// alone) on the real broker, which rejects unknown configs and bad values,
// and reads the configs back.
func TestProductionTopicConfigsOnTheBroker(t *testing.T) {
	proctest.Require(t)
	specs := scriptTopics(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close) // after the topics' deletion below (cleanups run last first)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sfx := stacktest.Suffix()
	for name, spec := range specs {
		topic := "deploycheck-" + name + "-" + sfx
		configs := map[string]*string{}
		for k, v := range spec.configs {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, int32(spec.partitions), 1, configs, topic)
		require.NoError(t, err, topic)
		require.NoError(t, resp.Err, "the broker accepts %s's configs", name)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = adm.DeleteTopics(ctx, topic)
		})
		// The new topic reaches the broker's metadata shortly after the
		// controller acknowledged it.
		got := map[string]string{}
		require.Eventually(t, func() bool {
			described, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				return false
			}
			rc, err := described.On(topic, nil)
			if err != nil || rc.Err != nil {
				return false
			}
			for _, c := range rc.Configs {
				got[c.Key] = c.MaybeValue()
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "describe %s", topic)
		for k, v := range spec.configs {
			require.Equal(t, v, got[k], "%s: %s", name, k)
		}
	}
}

// TestProductionBrokersFormat runs Kafka's own storage formatter on each
// production broker file (host names pointed at loopback, log.dirs at a
// temporary folder): it parses and validates the whole broker configuration
// (KRaft roles, quorum voters including the node itself, listeners) as a
// broker's start would, without starting one.
func TestProductionBrokersFormat(t *testing.T) {
	proctest.Require(t)
	jars := filepath.Join(home(repoRoot(t)), "kafka", "jars")
	_, err := os.Stat(jars)
	require.NoError(t, err, "Kafka jars (scripts/services up installs them)")
	hosts := regexp.MustCompile(`kafka-(\d)\.audittrail\.internal:909([23])`)
	for _, f := range brokerFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			formatBroker(t, jars, hosts, f)
		})
	}
}

// formatBroker formats the storage of one broker file rendered for
// loopback.
func formatBroker(t *testing.T, jars string, hosts *regexp.Regexp, f string) {
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	dir := t.TempDir()
	// kafka-N:9092 -> 127.0.0.1:2N092, kafka-N:9093 -> 127.0.0.1:2N093
	text := hosts.ReplaceAllString(string(b), "127.0.0.1:2${1}09${2}")
	text = strings.Replace(text, "log.dirs=/var/lib/kafka/data", "log.dirs="+filepath.Join(dir, "data"), 1)
	require.NotEqual(t, string(b), text)
	props := filepath.Join(dir, "server.properties")
	require.NoError(t, os.WriteFile(props, []byte(text), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "java", "-Xmx256m", "-cp", filepath.Join(jars, "*"),
		"kafka.tools.StorageTool", "format", "-t", "YXVkaXR0cmFpbC1wcm9kMQ", "-c", props).CombinedOutput()
	require.NoError(t, err, "%s: %s", f, out)
	require.Contains(t, string(out), "Formatting metadata directory", f)
	_, err = os.Stat(filepath.Join(dir, "data", "meta.properties"))
	require.NoError(t, err, "%s: storage formatted", f)
}
