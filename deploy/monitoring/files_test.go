package monitoring

// Test support shared by the unit and integration tests: the files, the
// metric names they use, and promtool.

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
)

const (
	rulesFile      = "rules/audittrail.rules.yml"
	promRuleFile   = "kubernetes/prometheusrule.yaml"
	dashboardFile  = "grafana/audittrail.json"
	runbookFile    = "RUNBOOK.md"
	runbookURLBase = "https://github.com/audittrail/audittrail/blob/main/deploy/monitoring/RUNBOOK.md#"
)

// notExported are series the rules read that Prometheus makes, not the
// services.
var notExported = map[string]bool{"up": true}

// loadRules parses the rule file with Prometheus's own parser (which also
// parses every expression and template) and fails on any error.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "%s loads in Prometheus", rulesFile)
	return groups
}

// exprMetrics returns the names of the series expr selects.
func exprMetrics(t *testing.T, expr string) []string {
	t.Helper()
	// Grafana's interval variables, as Grafana substitutes them.
	expr = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h").Replace(expr)
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, names, "%s selects no metric by name", expr)
	return names
}

// namedMetrics returns every series name the rules and the dashboard use, each with where it is named, without those Prometheus makes.
func namedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			for _, m := range exprMetrics(t, r.Expr) {
				out[m] = append(out[m], "rule "+r.Alert)
			}
		}
	}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			for _, m := range exprMetrics(t, tg.Expr) {
				out[m] = append(out[m], "panel "+p.Title)
			}
		}
	}
	for name := range notExported {
		delete(out, name)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// promtool returns the path of promtool, built into $AUDITTRAIL_HOME/bin by
// scripts/lib/promtool.sh. Without it the test is skipped, unless the
// integration switch is on (scripts/test installs it first).
func promtool(t *testing.T) string {
	t.Helper()
	home := config.Home.Get(config.FromOS())
	if !filepath.IsAbs(home) {
		home = filepath.Join(repoRoot(t), home)
	}
	bin := filepath.Join(home, "bin", "promtool")
	if _, err := os.Stat(bin); err != nil {
		if proctest.Enabled() {
			t.Fatalf("%s missing: scripts/test builds it (bash -c '. scripts/lib/services.sh; . scripts/lib/promtool.sh; promtool_install')", bin)
		}
		t.Skipf("%s missing: run scripts/test, or build it with scripts/lib/promtool.sh", bin)
	}
	return bin
}

// runPromtool runs promtool with args in this folder and returns its
// output, failing the test when it exits non-zero.
func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "go.mod not found above the test")
		dir = parent
	}
}

// yamlFile decodes a YAML file into v.
func yamlFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}
