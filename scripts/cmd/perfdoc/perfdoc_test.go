package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const root = "../../.."

// TestPerformanceDocIsGenerated fails when docs/performance.md's generated
// section is not what the newest files in scripts/bench-results/ give.
func TestPerformanceDocIsGenerated(t *testing.T) {
	section, err := Generate(filepath.Join(root, "scripts", "bench-results"))
	require.NoError(t, err)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "performance.md"))
	require.NoError(t, err)
	want, err := Splice(string(doc), section)
	require.NoError(t, err)
	require.Equal(t, want, string(doc), "docs/performance.md is out of step with scripts/bench-results/: run go run ./scripts/cmd/perfdoc")
	for _, s := range []string{"results.json", "floodbench.json", "capacity.json"} {
		require.Contains(t, section, "scripts/bench-results/"+s, "the section shows the newest %s", s)
	}
}

func TestSpliceKeepsTheHandWrittenText(t *testing.T) {
	doc := "# T\n\nbefore\n" + BeginMarker + "\nold\n" + EndMarker + "\nafter\n"
	got, err := Splice(doc, "new\n")
	require.NoError(t, err)
	require.Equal(t, "# T\n\nbefore\n"+BeginMarker+"\nnew\n"+EndMarker+"\nafter\n", got)

	_, err = Splice("no markers", "x")
	require.Error(t, err)
	_, err = Splice(EndMarker+BeginMarker, "x")
	require.Error(t, err)
	_, err = Splice(BeginMarker+EndMarker+BeginMarker+EndMarker, "x")
	require.Error(t, err)
}

func TestGenerateTakesTheNewestResultOfEachBench(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("results.json", `{"date": "2026-12-01"}`)
	write("results.md", "old pipeline table")
	write("results-2026-12-05.json", `{"date": "2026-12-05"}`)
	write("results-2026-12-05.md", "new pipeline table")
	write("floodbench.json", `{"date": "2026-12-07"}`)
	write("floodbench.md", "flood table")
	write("capacity.json", `{"date": "2026-11-25 04:21 UTC", "machine": "m", "cluster": "c", "events": 500000, "rounds": 3, "took": "1m", "figures": [{"name": "consume", "partitions": 6, "unit": "events/s", "value": 2263315.6, "min": 1042400.3, "max": 2435652.5, "per_unit": 377219.2, "per_unit_of": "partition"}]}`)

	got, err := Generate(dir)
	require.NoError(t, err)
	require.Contains(t, got, "new pipeline table")
	require.NotContains(t, got, "old pipeline table")
	require.Contains(t, got, "scripts/bench-results/results-2026-12-05.json")
	require.Contains(t, got, "flood table")
	require.Contains(t, got, "| consume | 6 |  | 2,263,316 events/s | 377,219 events/s per partition | 1,042,400 - 2,435,652 |")
	require.Less(t, strings.Index(got, "pipeline"), strings.Index(got, "flood table"))

	write("floodbench-nodate.json", `{}`)
	_, err = Generate(dir)
	require.ErrorContains(t, err, "no date")

	_, err = Generate(t.TempDir())
	require.ErrorContains(t, err, "no benchmark results")
}
