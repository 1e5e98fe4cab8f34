package main

// What the command reports: each run, the medians over runs and the
// Markdown table.

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// Run is one measured run.
type Run struct {
	Mode      string  `json:"mode"` // calm or flood
	Events    int     `json:"neighbour_events"`
	Flood     int     `json:"flood_events"`
	FloodRate float64 `json:"flood_achieved_rate"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
}

// Report is what the command writes.
type Report struct {
	Date       string  `json:"date"`
	Machine    string  `json:"machine"`
	Neighbours int     `json:"neighbours"`
	Rate       int     `json:"neighbour_rate"`
	FloodRate  int     `json:"flood_rate"`
	Duration   string  `json:"run_duration"`
	BatchAge   string  `json:"writer_batch_age"`
	CalmP50ms  float64 `json:"calm_p50_ms"`
	CalmP99ms  float64 `json:"calm_p99_ms"`
	FloodP50ms float64 `json:"flood_p50_ms"`
	FloodP99ms float64 `json:"flood_p99_ms"`
	Ratio      float64 `json:"p99_ratio"`
	Target     string  `json:"target"`
	Runs       []Run   `json:"runs"`
}

// medians are the medians over mode's runs of their p50 and p99.
func medians(runs []Run, mode string) (p50, p99 float64) {
	var a, b []float64
	for _, r := range runs {
		if r.Mode == mode {
			a, b = append(a, r.P50ms), append(b, r.P99ms)
		}
	}
	return median(a), median(b)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func markdown(r *Report) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Flood bench, %s, on %s: %d neighbour workspaces at %d events/s each and, in flood runs, one workspace at %d events/s, all on one partition; "+
		"writer batch age %s; %d runs of %s, calm and flood interleaved; medians over runs.\n\n",
		r.Date, r.Machine, r.Neighbours, r.Rate, r.FloodRate, r.BatchAge, len(r.Runs), r.Duration)
	fmt.Fprintln(&s, "| neighbours' ack -> queryable | p50 | p99 |")
	fmt.Fprintln(&s, "|---|---|---|")
	fmt.Fprintf(&s, "| calm (no flood) | %.0f ms | %.0f ms |\n", r.CalmP50ms, r.CalmP99ms)
	fmt.Fprintf(&s, "| flood (one workspace at %dx) | %.0f ms | %.0f ms |\n", r.FloodRate/r.Rate, r.FloodP50ms, r.FloodP99ms)
	fmt.Fprintf(&s, "\np99 flood / calm: %.2f (target: %s)\n\nRuns:\n\n", r.Ratio, r.Target)
	fmt.Fprintln(&s, "| run | mode | neighbour events | flood events (achieved rate) | p50 | p99 | max |")
	fmt.Fprintln(&s, "|---|---|---|---|---|---|---|")
	for i, run := range r.Runs {
		fmt.Fprintf(&s, "| %d | %s | %d | %d (%.0f/s) | %.0f ms | %.0f ms | %.0f ms |\n", i+1, run.Mode, run.Events, run.Flood, run.FloodRate, run.P50ms, run.P99ms, run.Maxms)
	}
	return s.String()
}

func write(dir string, r *Report) error {
	return benchkit.WriteResults(dir, "floodbench", r, markdown(r))
}

func machine() string {
	return fmt.Sprintf("%d cores, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}
