package monitoring

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the generated files (the dashboard JSON and the PrometheusRule) from their sources")

var severities = map[string]bool{"critical": true, "warning": true}

// TestRulesLoadInPrometheus parses the rule file with Prometheus's own
// parser and holds every alert to the conventions: a severity, a summary
// and a runbook link to its own entry in RUNBOOK.md.
func TestRulesLoadInPrometheus(t *testing.T) {
	groups := loadRules(t)
	runbook, err := os.ReadFile(runbookFile)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		require.NotEmpty(t, g.Rules, g.Name)
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "%s: alerts only (no recording rules)", g.Name)
			require.False(t, seen[r.Alert], "%s defined twice", r.Alert)
			seen[r.Alert] = true
			require.True(t, severities[r.Labels["severity"]], "%s: severity critical or warning, got %q", r.Alert, r.Labels["severity"])
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.Equal(t, runbookURLBase+strings.ToLower(r.Alert), r.Annotations["runbook_url"], r.Alert)
			require.Contains(t, string(runbook), "\n### "+r.Alert+"\n", "%s has a runbook entry", r.Alert)
		}
	}
	require.GreaterOrEqual(t, len(seen), 15)
}

// ruleTests is the part of a promtool test file this test reads.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsTestedFiringAndQuiet checks that the promtool tests cover
// every alert both ways: at least one evaluation where it fires and one,
// on a healthy series, where it does not.
func TestEveryAlertIsTestedFiringAndQuiet(t *testing.T) {
	files, err := filepath.Glob("tests/*.test.yml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		var rt ruleTests
		yamlFile(t, f, &rt)
		require.Equal(t, []string{"../" + rulesFile}, rt.RuleFiles, f)
		for _, tc := range rt.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			require.True(t, fires[r.Alert], "%s: no test shows it firing", r.Alert)
			require.True(t, quiet[r.Alert], "%s: no test shows it quiet", r.Alert)
		}
	}
}

// TestPromtoolRuleTests runs the rule unit tests with promtool (the
// production for: durations, on failing and healthy series), after
// promtool's own check of the rule file.
func TestPromtoolRuleTests(t *testing.T) {
	t.Parallel() // beside the live stack's test, which mostly waits
	runPromtool(t, "check", "rules", rulesFile)
	files, err := filepath.Glob("tests/*.test.yml")
	require.NoError(t, err)
	out := runPromtool(t, append([]string{"test", "rules"}, files...)...)
	require.Equal(t, len(files), strings.Count(out, "SUCCESS"), out)
}

// prometheusRule is the Kubernetes object of the Prometheus Operator.
type prometheusRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

// prometheusRuleYAML renders the rule file's groups as a PrometheusRule.
func prometheusRuleYAML(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(src, &doc))
	var pr prometheusRule
	pr.APIVersion, pr.Kind = "monitoring.coreos.com/v1", "PrometheusRule"
	pr.Metadata.Name, pr.Metadata.Namespace = "audittrail", "audittrail"
	pr.Metadata.Labels = map[string]string{"app.kubernetes.io/part-of": "audittrail", "role": "alert-rules"}
	pr.Spec = *doc.Content[0]
	pr.Spec.HeadComment = ""
	pr.Spec.Content[0].HeadComment = "" // the file's header, about the plain file
	var buf bytes.Buffer
	buf.WriteString("# Generated from deploy/monitoring/" + rulesFile + " by\n" +
		"# go test ./deploy/monitoring -run TestPrometheusRuleHoldsTheRuleFile -update\n" +
		"# The same groups as the plain rule file, for the Prometheus Operator.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(&pr))
	return buf.Bytes()
}

// TestPrometheusRuleHoldsTheRuleFile checks that the PrometheusRule holds
// exactly the plain rule file's groups.
func TestPrometheusRuleHoldsTheRuleFile(t *testing.T) {
	want := prometheusRuleYAML(t)
	if *update {
		require.NoError(t, os.WriteFile(promRuleFile, want, 0o644))
	}
	got, err := os.ReadFile(promRuleFile)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "regenerate with -update")

	var pr prometheusRule
	yamlFile(t, promRuleFile, &pr)
	var spec, plain any
	require.NoError(t, pr.Spec.Decode(&spec))
	yamlFile(t, rulesFile, &plain)
	require.Equal(t, plain, spec)
	require.Equal(t, "PrometheusRule", pr.Kind)
}

// grafanaDashboard is the part of Grafana's dashboard model the tests read.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	Options *struct {
		Legend  struct{ ShowLegend bool } `json:"legend"`
		Tooltip struct{ Mode string }     `json:"tooltip"`
	} `json:"options"`
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr         string `json:"expr"`
		RefID        string `json:"refId"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// dashboardPanels returns the committed dashboard's panels other than rows.
func dashboardPanels(t *testing.T) []grafanaPanel {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	var out []grafanaPanel
	for _, p := range d.Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

var variableRef = regexp.MustCompile(`\$\{?([A-Za-z_]+)`)

// TestDashboardIsGeneratedAndImportable checks that the committed JSON is
// what Dashboard builds, and that it imports anywhere: a Prometheus data
// source variable that every panel and query uses, no other variable, and
// queries that parse as PromQL.
func TestDashboardIsGeneratedAndImportable(t *testing.T) {
	want, err := Dashboard()
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(dashboardFile, want, 0o644))
	}
	got, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "regenerate with -update")

	// Grafana's own model (the SDK's types, generated from Grafana's
	// schema) reads it strictly and finds it valid.
	var model dashboard.Dashboard
	err = model.UnmarshalJSONStrict(got)
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		err = nil // the SDK returns its error list typed, even when empty
	}
	require.NoError(t, err, "the dashboard in Grafana's schema")
	require.NoError(t, model.Validate())

	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(got, &d))
	require.Equal(t, DashboardUID, d.UID)
	require.Len(t, d.Templating.List, 1)
	require.Equal(t, "datasource", d.Templating.List[0].Name)
	require.Equal(t, "datasource", d.Templating.List[0].Type)
	require.Equal(t, "prometheus", d.Templating.List[0].Query)

	panels := dashboardPanels(t)
	require.GreaterOrEqual(t, len(panels), 20)
	titles, ids := map[string]bool{}, map[int]bool{}
	for _, p := range d.Panels {
		require.NotZero(t, p.ID, p.Title)
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
	}
	for _, p := range panels {
		require.False(t, titles[p.Title], "panel %q twice", p.Title)
		titles[p.Title] = true
		require.Equal(t, "timeseries", p.Type, p.Title)
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotNil(t, p.GridPos, p.Title)
		require.NotNil(t, p.Options, p.Title)
		require.True(t, p.Options.Legend.ShowLegend, "%s: the legend names the series", p.Title)
		require.Equal(t, "multi", p.Options.Tooltip.Mode, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, m := range variableRef.FindAllStringSubmatch(tg.Expr, -1) {
				require.True(t, strings.HasPrefix(m[1], "__"), "%s: %s uses variable $%s that the dashboard does not define", p.Title, tg.Expr, m[1])
			}
			exprMetrics(t, tg.Expr)
		}
	}
}

var podName = regexp.MustCompile(`(?m)^        app\.kubernetes\.io/name: (audittrail-[a-z]+)$`)

// TestManifestsMatchTheScrapeJobs checks that the Kubernetes pods carry the
// names AuditTrailServiceDown selects as jobs, and the scrape annotations.
func TestManifestsMatchTheScrapeJobs(t *testing.T) {
	var down string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "AuditTrailServiceDown" {
				down = r.Expr
			}
		}
	}
	jobs := regexp.MustCompile(`job=~"(.*?)"`).FindStringSubmatch(down)
	require.Len(t, jobs, 2, down)
	selected := regexp.MustCompile(`^` + jobs[1] + `$`)
	for _, svc := range []string{"writer", "forwarder", "ingest", "api", "sealer"} {
		b, err := os.ReadFile(filepath.Join("..", "kubernetes", svc+".yaml"))
		require.NoError(t, err)
		m := podName.FindStringSubmatch(string(b))
		require.Len(t, m, 2, "%s.yaml: the pod template's app.kubernetes.io/name", svc)
		require.Equal(t, "audittrail-"+svc, m[1])
		require.True(t, selected.MatchString(m[1]), "%s is not a job AuditTrailServiceDown selects", m[1])
		require.Contains(t, string(b), `prometheus.io/scrape: "true"`, svc)
	}
}
