package main

// What the command reports: the figures, the machine, the Markdown table
// and the SVG chart.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// Figure is one measured number: the median of its runs, the best run
// beside it, and its ratio to the baseline measured in the same rounds.
type Figure struct {
	Name      string    `json:"name"`
	Value     float64   `json:"value"` // the median of Runs, or the one run
	Unit      string    `json:"unit"`
	Best      float64   `json:"best,omitempty"` // the fastest run (rates only)
	Runs      []float64 `json:"runs,omitempty"` // every run, in order
	Baseline  string    `json:"baseline,omitempty"`
	Ratio     float64   `json:"ratio,omitempty"`      // median over rounds of value / baseline in the same round
	BestRatio float64   `json:"best_ratio,omitempty"` // best / the baseline's best
	Target    string    `json:"target,omitempty"`
}

// Report is what the command writes.
type Report struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	Servers string `json:"servers"`
	Mode    string `json:"mode"`
	Rows    int    `json:"rows"`
	Rounds  int    `json:"rounds"`
	// Settings are what the sides ran with.
	Settings   map[string]string `json:"settings"`
	Figures    []Figure          `json:"figures"`
	Runs       []Run             `json:"runs"`        // every throughput run, in the order run
	EngineGrid []EngineTrial     `json:"engine_grid"` // the Kafka engine's tuning runs
	Latency    []LatRow          `json:"latency"`
	Took       string            `json:"took"`
}

// rateFigure is the median, best and runs of o.
func rateFigure(name, unit string, o outcome) Figure {
	return Figure{Name: name, Value: o.median(), Unit: unit, Best: o.best(), Runs: o.rates}
}

// against is f with the baseline base measured in the same rounds.
func (f Figure) against(baseName string, o, base outcome, target string) Figure {
	f.Baseline, f.Ratio, f.Target = baseName, medianRatio(o, base), target
	if f.Best != 0 && base.best() != 0 {
		f.BestRatio = o.best() / base.best()
	}
	return f
}

// cpuFigure is the median of o's CPU seconds per million rows.
func cpuFigure(name string, o outcome) Figure {
	return Figure{Name: name, Value: o.medianCPU(), Unit: "CPU s", Runs: o.cpu}
}

// splitCPUFigure is the median of one part of the CPU seconds per million
// rows (see outcome.proc and outcome.server).
func splitCPUFigure(name string, v []float64) Figure {
	return Figure{Name: name, Value: median(v), Unit: "CPU s", Runs: v}
}

// figures are the writer's figures against its baselines (out holds the
// client's outcome, the writer's and, unless -writer-only, the Kafka
// engine's).
func figures(b baseline, out []outcome) []Figure {
	client, wr := out[0], out[1]
	cpu := func(o outcome) outcome { return outcome{rates: o.cpu} }
	f := []Figure{
		rateFigure("clickhouse-client insert (JSONEachRow)", "rows/s", client),
		{Name: "franz-go produce (plain, one run)", Value: b.produce, Unit: "records/s"},
		rateFigure("audittrail writer: Kafka -> ClickHouse", "events/s", wr).against("clickhouse-client insert", wr, client, ">= 0.90"),
		cpuFigure("CPU per million rows: clickhouse-client, the server and the broker", client),
		cpuFigure("CPU per million events: writer, the server and the broker", wr).against("clickhouse-client", cpu(wr), cpu(client), ""),
		splitCPUFigure("process CPU per million: the writer (bench process)", wr.proc).
			against("clickhouse-client (bench process and its child)", outcome{rates: wr.proc}, outcome{rates: client.proc}, "<= 1.5"),
		splitCPUFigure("ClickHouse server CPU per million: writer run", wr.server).
			against("clickhouse-client run", outcome{rates: wr.server}, outcome{rates: client.server}, "<= 1.1"),
		splitCPUFigure("ClickHouse CPU of the writer's own INSERTs per million (system.query_log)", wr.query).
			against("clickhouse-client's INSERT", outcome{rates: wr.query}, outcome{rates: client.query}, ""),
	}
	if len(out) < 3 {
		return f
	}
	engine := out[2]
	return append(f,
		rateFigure("ClickHouse Kafka engine + MV (best grid settings)", "rows/s", engine),
		rateFigure("audittrail writer vs Kafka engine", "events/s", wr).against("Kafka engine + MV", wr, engine, ">= 1.00"),
		cpuFigure("CPU per million rows: Kafka engine, the server and the broker", engine),
		Figure{Name: "franz-go consume (plain, one run)", Value: b.consume, Unit: "records/s"},
		Figure{Name: "audittrail writer vs plain franz-go consume", Value: wr.median(), Unit: "events/s",
			Baseline: "franz-go consume (plain)", Ratio: wr.median() / b.consume, BestRatio: wr.best() / b.consume},
	)
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/1024/1024)
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), strings.TrimSpace(model), mem, runtime.GOOS, runtime.GOARCH)
}

func markdown(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmarks (%s mode, %d events, %d interleaved rounds), %s, on %s; %s; took %s.\n\n",
		r.Mode, r.Rows, r.Rounds, r.Date, r.Machine, r.Servers, r.Took)
	fmt.Fprintln(&b, "| measurement | median | best | runs | baseline (same rounds) | ratio, median of pairs | best / best | target |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
	for _, f := range r.Figures {
		ratio, bestRatio, best := "", "", ""
		if f.Baseline != "" {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		if f.BestRatio != 0 {
			bestRatio = fmt.Sprintf("%.2f", f.BestRatio)
		}
		if f.Best != 0 {
			best = num(f.Best)
		}
		runs := make([]string, len(f.Runs))
		for i, v := range f.Runs {
			runs[i] = num(v)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s | %s | %s | %s |\n",
			f.Name, num(f.Value), f.Unit, best, strings.Join(runs, ", "), f.Baseline, ratio, bestRatio, f.Target)
	}
	if len(r.EngineGrid) > 0 {
		fmt.Fprintf(&b, "\n| Kafka engine grid, one run each from the earliest offset (stream_flush_interval_ms = %s, server-wide in 18.16) | kafka_num_consumers | kafka_max_block_size | rate |\n|---|---|---|---|\n",
			r.Settings["stream_flush_interval_ms"])
		for _, t := range r.EngineGrid {
			fmt.Fprintf(&b, "| %s | %d | %d | %s rows/s |\n", mark(t.engineSettings.String() == r.Settings["engine"]), t.Consumers, t.MaxBlockSize, num(t.Rate))
		}
	}
	fmt.Fprintf(&b, "\nSettings: writer %s; compression %s.\n", r.Settings["writer"], r.Settings["compression"])
	if len(r.Latency) > 0 {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "| end-to-end, open loop | offered | achieved | events | ack -> first read p50 | p99 | max | scheduled -> first read p50 | p99 | max | writer batch age |")
		fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, l := range r.Latency {
			fmt.Fprintf(&b, "| %d events/s | %d/s | %.0f/s | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %s |\n",
				l.Rate, l.Rate, l.Achieved, l.Events, l.P50ms, l.P99ms, l.Maxms, l.SchedP50ms, l.SchedP99ms, l.SchedMaxms, l.BatchAge)
		}
	}
	return b.String()
}

// mark names the grid point the rounds ran with.
func mark(chosen bool) string {
	if chosen {
		return "fastest, used in the rounds"
	}
	return ""
}

// num prints rates as whole numbers and small values with two decimals.
func num(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func write(dir string, r *Report) error {
	return errors.Join(
		benchkit.WriteResults(dir, "results", r, markdown(r)),
		os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(chart(r)), 0o644),
	)
}

// chart draws throughput bars and latency bars as one SVG.
func chart(r *Report) string {
	var b strings.Builder
	const w, rowH, labelW, barW = 860, 26, 330, 420
	var thr []Figure
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if !strings.HasSuffix(f.Unit, "/s") {
			continue // rates only
		}
		name := f.Name
		if f.Baseline != "" {
			name = "audittrail writer: Kafka -> ClickHouse"
		}
		if !seen[name] {
			seen[name] = true
			thr = append(thr, Figure{Name: name, Value: f.Value, Unit: f.Unit})
		}
	}
	h := 60 + len(thr)*rowH + 60 + len(r.Latency)*rowH*2 + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="10" y="22" font-size="16" font-weight="bold">Throughput (events/s), %s, %s</text>`+"\n", r.Date, r.Mode)
	maxV := 0.0
	for _, f := range thr {
		maxV = max(maxV, f.Value)
	}
	y := 40
	for _, f := range thr {
		color := "#9aa5b1"
		if strings.HasPrefix(f.Name, "audittrail") {
			color = "#2f6fde"
		}
		bw := int(f.Value / maxV * barW)
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text><rect x="%d" y="%d" width="%d" height="18" fill="%s"/><text x="%d" y="%d">%.0f</text>`+"\n",
			y+14, esc(f.Name), labelW, y, bw, color, labelW+bw+6, y+14, f.Value)
		y += rowH
	}
	y += 30
	fmt.Fprintf(&b, `<text x="10" y="%d" font-size="16" font-weight="bold">End-to-end latency, producer ack to queryable (ms)</text>`+"\n", y)
	y += 18
	maxL := 0.0
	for _, l := range r.Latency {
		maxL = max(maxL, l.P99ms)
	}
	for _, l := range r.Latency {
		for _, p := range []struct {
			name  string
			v     float64
			color string
		}{{"p50", l.P50ms, "#7fb37f"}, {"p99", l.P99ms, "#d9822b"}} {
			bw := int(p.v / max(maxL, 1) * barW)
			fmt.Fprintf(&b, `<text x="10" y="%d">%d events/s %s</text><rect x="%d" y="%d" width="%d" height="18" fill="%s"/><text x="%d" y="%d">%.0f</text>`+"\n",
				y+14, l.Rate, p.name, labelW, y, bw, p.color, labelW+bw+6, y+14, p.v)
			y += rowH
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
