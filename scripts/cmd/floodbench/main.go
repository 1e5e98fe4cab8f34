// Package main is the floodbench command, which measures the cost of a
// flooding workspace.
//
// It measures how much one flooding workspace holds back the other
// workspaces of its partition in the writer, on the real Kafka and
// ClickHouse servers.
//
// N neighbour workspaces send at a steady rate each, through the emitter,
// to a one-partition topic (so every workspace shares the partition) while
// a writer runs in this process. In a flood run one more workspace sends at
// -factor times a neighbour's rate; a calm run has no flood. Calm and flood
// runs alternate (calm first, then flood first, ...) and for each run the
// neighbours' latency from the producer's acknowledgement to queryable is
// measured: for the k-th acknowledged event of a workspace, the time until
// ClickHouse counts k rows of that workspace (polled every 20 ms; an upper
// bound, as in scripts/cmd/bench). The command prints the median over runs
// of each mode's p50 and p99 and writes them to -out as floodbench.json and
// floodbench.md. It creates and deletes its own topic, group and database.
//
// Usage: floodbench [-neighbours 8] [-rate 100] [-factor 20] [-duration 20s] [-pairs 3] [-out dir]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

var brokers = []string{"127.0.0.1:9092"}

type options struct {
	neighbours int
	rate       int // events/s of each neighbour
	factor     int // the flood's rate over a neighbour's
	duration   time.Duration
	pairs      int
	outDir     string
}

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

func main() {
	var o options
	fs := flag.NewFlagSet("floodbench", flag.ContinueOnError)
	fs.IntVar(&o.neighbours, "neighbours", 8, "neighbour workspaces")
	fs.IntVar(&o.rate, "rate", 100, "events per second of each neighbour")
	fs.IntVar(&o.factor, "factor", 20, "the flooding workspace's rate over a neighbour's")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each run")
	fs.IntVar(&o.pairs, "pairs", 3, "calm and flood runs of each (interleaved)")
	fs.StringVar(&o.outDir, "out", "scripts/bench-results", "folder for floodbench.json and floodbench.md")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.neighbours < 1 || o.rate < 1 || o.factor < 1 || o.pairs < 1 || o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "floodbench: -neighbours, -rate, -factor and -pairs must be at least 1, -duration at least 1s")
		os.Exit(2)
	}
	rep, err := run(context.Background(), o)
	if err == nil {
		err = write(o.outDir, rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floodbench:", err)
		os.Exit(1)
	}
	fmt.Print(markdown(rep))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "floodbench: "+format+"\n", args...) }

type bench struct {
	o     options
	conn  driver.Conn
	db    string
	topic string
	em    *emitter.Emitter
	gen   *loadgen.Generator
	genMu sync.Mutex
}

func run(ctx context.Context, o options) (*Report, error) {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	b := &bench{o: o, db: "floodbench_" + sfx, topic: "floodbench-" + sfx}
	var err error
	b.conn, err = chconn.Open(ctx, chconn.Config{Addr: "127.0.0.1:9000", Database: b.db, Username: "default",
		Compression: os.Getenv("AUDITTRAIL_CLICKHOUSE_COMPRESSION"), DialTimeout: 5 * time.Second, ReadTimeout: time.Minute, MaxOpenConns: 4})
	if err != nil {
		return nil, err
	}
	defer b.conn.Close()
	if _, err := migrations.Apply(ctx, b.conn, migrations.Options{Database: b.db, RetentionDays: 90}); err != nil {
		return nil, err
	}
	defer func() { _ = b.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+b.db) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := "floodbench-" + sfx
	defer func() {
		_, _ = adm.DeleteTopics(context.Background(), b.topic, b.topic+"-dlq")
		_, _ = adm.DeleteGroup(context.Background(), group)
	}()
	// One partition: every workspace shares it.
	if err := kafkaconn.EnsureTopics(ctx, cl, 1, nil, b.topic); err != nil {
		return nil, err
	}

	env := config.FromOS()
	cfg := writer.FromEnv(env, b.topic)
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg.Group, cfg.DeadLetterTopic = group, b.topic+"-dlq"
	reg := prometheus.NewRegistry()
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(brokers...)}, writer.NewClickHouseSink(b.conn, b.db),
		slog.New(slog.NewTextHandler(io.Discard, nil)), reg, nil)
	if err != nil {
		return nil, err
	}
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.Run(wctx) }()
	defer func() { stopWriter(); <-writerDone }()

	if b.em, err = emitter.New(emitter.Config{Topic: b.topic}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil); err != nil {
		return nil, err
	}
	defer b.em.Close()
	b.gen, _ = loadgen.New(loadgen.Config{Workspaces: 10, ZipfS: 1.1, Seed: 7}, time.Now)
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}

	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), Neighbours: o.neighbours, Rate: o.rate,
		FloodRate: o.rate * o.factor, Duration: o.duration.String(), BatchAge: cfg.BatchAge.String(),
		Target: "flood p99 <= 2 x calm p99"}
	tries := 0 // runs started, each with its own workspaces
	for p := range o.pairs {
		modes := []bool{false, true}
		if p%2 == 1 {
			modes = []bool{true, false}
		}
		for _, flood := range modes {
			var r Run
			var err error
			// A run the servers interrupted (a restart elsewhere) is run
			// again: its figures would measure the restart.
			for attempt := 0; ; attempt++ {
				r, err = b.measure(ctx, tries, flood)
				tries++
				if !errors.Is(err, errInterrupted) || attempt == 2 {
					break
				}
				logf("%v; running it again", err)
				if _, err := b.waitStored(ctx, map[string]int{"warmup": 1}, 2*time.Minute); err != nil {
					return nil, err
				}
			}
			if err != nil {
				return nil, err
			}
			logf("run %d %s: neighbours p50 %.0f ms p99 %.0f ms max %.0f ms (%d events; flood %d at %.0f/s)",
				len(rep.Runs)+1, r.Mode, r.P50ms, r.P99ms, r.Maxms, r.Events, r.Flood, r.FloodRate)
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.CalmP50ms, rep.CalmP99ms = medians(rep.Runs, "calm")
	rep.FloodP50ms, rep.FloodP99ms = medians(rep.Runs, "flood")
	rep.Ratio = rep.FloodP99ms / rep.CalmP99ms
	return rep, nil
}

// warmUp sends one event and waits until it is stored: the writer has
// joined its group and the first insert's connection is open.
func (b *bench) warmUp(ctx context.Context) error {
	ev := b.event("warmup")
	if err := b.em.Emit(ctx, ev); err != nil {
		return err
	}
	_, err := b.waitStored(ctx, map[string]int{"warmup": 1}, time.Minute)
	return err
}

func (b *bench) event(ws string) event.Event {
	b.genMu.Lock()
	ev := b.gen.Next()
	b.genMu.Unlock()
	ev.WorkspaceID = ws
	ev.ID = ""
	return ev
}

// measure runs the neighbours (and the flood) for the run's duration and
// returns the neighbours' ack -> queryable latencies.
func (b *bench) measure(ctx context.Context, n int, flood bool) (Run, error) {
	mode := "calm"
	if flood {
		mode = "flood"
	}
	var mu sync.Mutex
	acks := map[string][]time.Time{} // per neighbour, in acknowledgement order
	var sendErr error
	names := make([]string, b.o.neighbours)
	want := map[string]int{}
	per := int(float64(b.o.rate) * b.o.duration.Seconds())
	for i := range names {
		names[i] = fmt.Sprintf("ws_run%d_n%d", n, i)
		want[names[i]] = per
	}
	floodWS := fmt.Sprintf("ws_run%d_flood", n)
	floodN := 0
	if flood {
		floodN = per * b.o.factor
		want[floodWS] = floodN
	}
	start := time.Now()
	var wg sync.WaitGroup
	send := func(ws string, total, rate int, record bool) {
		for i := range total {
			due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			b.em.EmitAsync(ctx, b.event(ws), func(_ event.Event, err error) {
				at := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					sendErr = errors.Join(sendErr, err)
					return
				}
				if record {
					acks[ws] = append(acks[ws], at)
				}
			})
		}
	}
	for _, ws := range names {
		wg.Go(func() { send(ws, per, b.o.rate, true) })
	}
	var floodTook time.Duration
	if flood {
		wg.Go(func() { send(floodWS, floodN, b.o.rate*b.o.factor, false); floodTook = time.Since(start) })
	}
	samples, err := b.poll(ctx, names, want, start.Add(b.o.duration+2*time.Minute))
	wg.Wait()
	if err != nil {
		return Run{}, err
	}
	if err := b.em.Flush(ctx); err != nil {
		return Run{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	if sendErr != nil {
		return Run{}, sendErr
	}
	lats, err := latencies(names, acks, samples)
	if err != nil {
		return Run{}, err
	}
	pct := func(p float64) float64 { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	r := Run{Mode: mode, Events: len(lats), Flood: floodN, P50ms: pct(0.5), P99ms: pct(0.99), Maxms: lats[len(lats)-1]}
	if flood && floodTook > 0 {
		r.FloodRate = float64(floodN) / floodTook.Seconds()
	}
	return r, nil
}

// errInterrupted: ClickHouse did not answer for a while during a run.
var errInterrupted = errors.New("run interrupted: ClickHouse did not answer")

// latencies are the neighbours' ack -> queryable times in ms, sorted: for
// the k-th acknowledged event of a workspace, the first sample counting k
// of its rows.
func latencies(names []string, acks map[string][]time.Time, samples []sample) ([]float64, error) {
	var lats []float64
	for i, ws := range names {
		j := 0
		for k, ack := range acks[ws] {
			for j < len(samples) && samples[j].counts[i] < k+1 {
				j++
			}
			if j == len(samples) {
				return nil, fmt.Errorf("%s: %d of %d events queryable", ws, k, len(acks[ws]))
			}
			lats = append(lats, max(0, samples[j].at.Sub(ack).Seconds()*1000))
		}
	}
	if len(lats) == 0 {
		return nil, errors.New("no neighbour event was acknowledged")
	}
	slices.Sort(lats)
	return lats, nil
}

type sample struct {
	at     time.Time
	counts []int // per neighbour
}

// poll samples the neighbours' row counts every 20 ms until every workspace
// of want holds its rows (the flood too, so the next run starts on an empty
// partition backlog).
func (b *bench) poll(ctx context.Context, names []string, want map[string]int, deadline time.Time) ([]sample, error) {
	index := map[string]int{}
	for i, ws := range names {
		index[ws] = i
	}
	var samples []sample
	var interrupted error
	for {
		got, err := b.counts(ctx, want)
		if err != nil {
			interrupted = errors.Join(interrupted, err)
			if time.Now().After(deadline) {
				return nil, err
			}
			time.Sleep(time.Second)
			continue
		}
		if interrupted != nil {
			// Carry on until every event is stored, so the next run
			// starts without a backlog, then report the interruption.
			done := true
			for ws, n := range want {
				done = done && got[ws] >= n
			}
			if done || time.Now().After(deadline) {
				return nil, fmt.Errorf("%w: %v", errInterrupted, interrupted)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		s := sample{at: time.Now(), counts: make([]int, len(names))}
		for ws, c := range got {
			if i, ok := index[ws]; ok {
				s.counts[i] = c
			}
		}
		samples = append(samples, s)
		done := true
		for ws, n := range want {
			done = done && got[ws] >= n
		}
		if done {
			return samples, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not every event queryable by the deadline: %v of %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bench) waitStored(ctx context.Context, want map[string]int, within time.Duration) (map[string]int, error) {
	deadline := time.Now().Add(within)
	for {
		got, err := b.counts(ctx, want)
		if err != nil {
			if time.Now().After(deadline) {
				return nil, err
			}
			time.Sleep(time.Second)
			continue
		}
		done := true
		for ws, n := range want {
			done = done && got[ws] >= n
		}
		if done {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("stored %v of %v within %s", got, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counts is the rows of each workspace of want (the table's order starts
// with workspace_id, so this reads only their ranges).
func (b *bench) counts(ctx context.Context, want map[string]int) (map[string]int, error) {
	ws := make([]any, 0, len(want))
	for w := range want {
		ws = append(ws, w)
	}
	rows, err := b.conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, count() FROM %s.%s WHERE workspace_id IN ? GROUP BY workspace_id", b.db, migrations.Table),
		clickhouse.GroupSet{Value: ws})
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var w string
		var c uint64
		if err := rows.Scan(&w, &c); err != nil {
			return nil, err
		}
		got[w] = int(c)
	}
	return got, rows.Err()
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "floodbench.json"), append(js, '\n'), 0o644),
		os.WriteFile(filepath.Join(dir, "floodbench.md"), []byte(markdown(r)), 0o644),
	)
}

func machine() string {
	return fmt.Sprintf("%d cores, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}
