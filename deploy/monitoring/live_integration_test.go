package monitoring

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
)

// TestOnALiveStack runs the real services against Kafka and ClickHouse and
// holds the monitoring files to them: every metric the rules and the
// dashboard name is exported, every confirm command of the runbook runs,
// status reports the stack, and the insert-errors alert expression turns
// true while ClickHouse is unreachable and false after.
func TestOnALiveStack(t *testing.T) {
	proctest.Require(t)
	t.Parallel()
	promtool(t) // fail early when missing
	s := startStack(t)
	s.exercise(t)

	t.Run("every named metric is exported", func(t *testing.T) {
		exported := map[string]string{}
		for _, name := range services {
			for series := range scrape(t, s.addrs[name]) {
				exported[series] = name
			}
		}
		named := namedMetrics(t)
		for _, m := range sortedKeys(named) {
			require.Contains(t, exported, m, "%s (named by %s) is exported by no service", m, strings.Join(named[m], ", "))
		}
	})
	t.Run("the runbook's confirm commands run", func(t *testing.T) { runbookCommands(t, s) })
	t.Run("status reports the stack", func(t *testing.T) { statusReport(t, s) })
	t.Run("insert errors alert while ClickHouse is down", func(t *testing.T) { clickHouseOutage(t, s) })
}

// confirmBlock is a ```sh confirm block of the runbook under its heading.
type confirmBlock struct{ heading, script string }

var confirmBlocks = regexp.MustCompile("(?s)```sh confirm\n(.*?)```")

func runbookConfirmBlocks(t *testing.T) []confirmBlock {
	t.Helper()
	b, err := os.ReadFile(runbookFile)
	require.NoError(t, err)
	text := string(b)
	var out []confirmBlock
	for _, loc := range confirmBlocks.FindAllStringSubmatchIndex(text, -1) {
		heading := text[:loc[0]]
		heading = heading[strings.LastIndex(heading, "\n### ")+5:]
		heading = heading[:strings.Index(heading, "\n")]
		out = append(out, confirmBlock{heading, text[loc[2]:loc[3]]})
	}
	return out
}

// runbookCommands runs each confirm block with bash -euo pipefail, the
// runbook's variables set to the live stack and dlq and status on PATH: it
// must succeed and print something.
func runbookCommands(t *testing.T, s *stack) {
	blocks := runbookConfirmBlocks(t)
	covered := map[string]bool{}
	for _, b := range blocks {
		covered[b.heading] = true
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			require.True(t, covered[r.Alert], "%s has no confirm command", r.Alert)
		}
	}
	chHost, _ := hostPort(t, config.ClickHouseAddr.Get(config.FromOS()))
	env := append(processEnv(), s.env...)
	env = append(env,
		"PATH="+filepath.Dir(s.bins["dlq"])+string(os.PathListSeparator)+os.Getenv("PATH"),
		"WRITER="+s.addrs["writer"], "FORWARDER="+s.addrs["forwarder"], "INGEST="+s.addrs["ingest"], "API="+s.addrs["api"],
		"SEALER="+s.addrs["sealer"],
		"CLICKHOUSE_HTTP="+chHost+":8123", "DB="+s.db)
	for _, b := range blocks {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "%s: confirm command failed:\n%s\n--- output ---\n%s", b.heading, b.script, out)
		require.NotEmpty(t, strings.TrimSpace(string(out)), "%s: confirm command printed nothing:\n%s", b.heading, b.script)
	}
}

// statusReport runs the status command on the stack and reads its lines.
func statusReport(t *testing.T, s *stack) {
	cmd := exec.Command(s.bins["status"])
	cmd.Env = append(processEnv(), s.env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	text := string(out)
	for _, name := range services {
		require.Regexp(t, `(?m)^  `+name+` +`+regexp.QuoteMeta(s.addrs[name])+` +ready$`, text)
	}
	require.Regexp(t, `(?m)^  monitoring-writer-\w+ +lag \d+, stable, 1 members \(p0=\d+`, text)
	require.Regexp(t, `(?m)^  monitoring-forwarder-\w+ +lag \d+, stable, 1 members`, text)
	require.Regexp(t, `(?m)^  monitoring-sealer-\w+ +lag \d+, stable, 1 members`, text)
	require.Regexp(t, `(?m)^  monitoring-dlq-\w+ +[1-9]\d* in \d+ partitions$`, text, "the writer's dead letter")
	require.Regexp(t, `(?m)^  monitoring-fdlq-\w+ +[1-9]\d* in \d+ partitions$`, text, "the forwarder's dead letters")
	today := time.Now().UTC().Format("2006-01-02")
	require.Regexp(t, `(?m)^  oldest stored event: `+today+`T[0-9:]+Z \(0\.0 days ago\); retention 90 days$`, text)
}

// The fault: ClickHouse unreachable for the writer (its proxy cut) while
// events keep arriving.
const (
	// scrapeEvery is how often the test scrapes the writer; each scrape is
	// recorded as one sample promInterval apart, so the recorded series run
	// 30 times faster than real time: the rule's 5m window is 10 scrapes
	// and its for: 5m another 10, and the 16 s outage stands for 8 minutes.
	// The expression only asks whether the counter increased, which the
	// compression does not change; the writer retries a failed insert at
	// most 5 s (5 scrapes) apart, inside the window.
	scrapeEvery   = time.Second
	promInterval  = 30 * time.Second
	healthyScrape = 5
	outageScrapes = 16
	afterScrapes  = 20
	windowScrapes = int(5 * time.Minute / promInterval)
)

// clickHouseOutage records the writer's insert errors before, during and
// after a ClickHouse outage and has promtool evaluate the production rule
// on them: the expression is empty before, true during, empty after, and
// the alert fires within the outage.
func clickHouseOutage(t *testing.T, s *stack) {
	var values []float64
	posted := 0
	record := func(n int) {
		tick := time.NewTicker(scrapeEvery)
		defer tick.Stop()
		for range n {
			<-tick.C
			code, _ := do(t, "POST", "http://"+s.addrs["ingest"]+"/v1/events", ingestToken,
				batch("ws_other", fmt.Sprintf("outage%03d", posted), 5, time.Now().UTC()))
			require.Equal(t, 202, code)
			posted++
			v, n, err := proctest.Metric(context.Background(), s.addrs["writer"], "audittrail_writer_insert_errors_total")
			require.NoError(t, err)
			require.Equal(t, 1, n)
			values = append(values, v)
		}
	}
	record(healthyScrape)
	s.chProxy.SetDown(true)
	record(outageScrapes)
	s.chProxy.SetDown(false)
	record(afterScrapes)
	t.Logf("insert errors per scrape: %v", values)

	require.Equal(t, values[0], values[healthyScrape-1], "no insert errors before the outage")
	require.Greater(t, values[healthyScrape+outageScrapes-1], values[healthyScrape-1], "inserts failed during the outage")
	last := len(values) - 1
	for last > 0 && values[last-1] == values[last] {
		last--
	}
	require.Less(t, last, healthyScrape+outageScrapes+8, "inserts succeed again within the writer's backoff (5 s)")
	require.Greater(t, len(values)-1-last, windowScrapes, "recorded long enough after the last error for the window to pass")
	runPromtool(t, "test", "rules", outageRuleTest(t, values))
}

// outageRuleTest writes a promtool test of the recorded series and returns
// its path: AuditTrailWriterInsertErrors's expression before the outage,
// at its end and after, and the alert at its end.
func outageRuleTest(t *testing.T, values []float64) string {
	rules, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	var expr string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "AuditTrailWriterInsertErrors" {
				expr = r.Expr
			}
		}
	}
	require.NotEmpty(t, expr)
	series := make([]string, len(values))
	for i, v := range values {
		series[i] = model.SampleValue(v).String()
	}
	at := func(i int) string { return model.Duration(time.Duration(i) * promInterval).String() }
	duringEnd := healthyScrape + outageScrapes - 1
	const labels = `{job="audittrail-writer", instance="writer-under-test"}`
	test := fmt.Sprintf(`rule_files: [%q]
evaluation_interval: %s
tests:
  - name: writer insert errors recorded around a ClickHouse outage
    interval: %s
    input_series:
      - series: 'audittrail_writer_insert_errors_total%s'
        values: '%s'
    promql_expr_test:
      - {expr: 'count(%s)', eval_time: %s, exp_samples: []}
      - {expr: 'count(%s)', eval_time: %s, exp_samples: [{labels: '{}', value: 1}]}
      - {expr: 'count(%s)', eval_time: %s, exp_samples: []}
    alert_rule_test:
      - eval_time: %s
        alertname: AuditTrailWriterInsertErrors
        exp_alerts:
          - exp_labels: {severity: critical, job: audittrail-writer, instance: writer-under-test}
            exp_annotations:
              summary: Writer writer-under-test keeps failing to insert into ClickHouse.
              runbook_url: %saudittrailwriterinserterrors
      - eval_time: %s
        alertname: AuditTrailWriterInsertErrors
        exp_alerts: []
`, rules, model.Duration(promInterval), model.Duration(promInterval), labels, strings.Join(series, " "),
		oneLine(expr), at(healthyScrape-1), oneLine(expr), at(duringEnd), oneLine(expr), at(len(values)-1),
		at(duringEnd), runbookURLBase, at(len(values)-1))
	path := filepath.Join(t.TempDir(), "outage.test.yml")
	require.NoError(t, os.WriteFile(path, []byte(test), 0o644))
	return path
}

// oneLine is expr on one line, for a single-quoted YAML scalar.
func oneLine(expr string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(expr), " "), "'", "''")
}
