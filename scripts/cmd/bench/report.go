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

// Figure is one measured number.
type Figure struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"` // Value / baseline value
	Target   string  `json:"target,omitempty"`
}

// Report is what the command writes.
type Report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Servers string   `json:"servers"`
	Mode    string   `json:"mode"`
	Rows    int      `json:"rows"`
	Figures []Figure `json:"figures"`
	Latency []LatRow `json:"latency"`
	Took    string   `json:"took"`
}

// LatRow is the end-to-end latency at one rate.
type LatRow struct {
	Rate     int     `json:"rate"`
	Achieved float64 `json:"achieved_rate"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
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
	fmt.Fprintf(&b, "Benchmarks (%s mode, %d events), %s, on %s; %s; took %s.\n\n", r.Mode, r.Rows, r.Date, r.Machine, r.Servers, r.Took)
	fmt.Fprintln(&b, "| measurement | value | baseline (same run) | ratio | target |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	for _, f := range r.Figures {
		ratio := ""
		if f.Baseline != "" {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		value := fmt.Sprintf("%.0f", f.Value)
		if f.Value < 100 {
			value = fmt.Sprintf("%.2f", f.Value)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s |\n", f.Name, value, f.Unit, f.Baseline, ratio, f.Target)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| end-to-end (producer ack -> queryable) | achieved rate | p50 | p99 | max |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	for _, l := range r.Latency {
		fmt.Fprintf(&b, "| %d events/s | %.0f/s | %.0f ms | %.0f ms | %.0f ms |\n", l.Rate, l.Achieved, l.P50ms, l.P99ms, l.Maxms)
	}
	return b.String()
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
