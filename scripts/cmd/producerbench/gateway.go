package main

// The ingest gateway as its own process: its capacity (a sweep of
// closed-loop senders up to the plateau), its latency under open-loop load,
// and its process CPU per event next to the emitter's.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/schemas/event"
)

const benchToken = "producerbench-ingest-token-0123456789"

// emitterBaseline is what section 1 measured of the emitter, medians of
// its rounds.
type emitterBaseline struct {
	rate  float64 // events/s
	cpuUs float64 // process CPU µs per event
}

// startGateway starts the ingest binary on a port of its choosing with its
// own topic and returns its address and what stops it.
func startGateway(ctx context.Context, o options, topic string) (addr string, stop func(), err error) {
	gw := exec.Command(o.ingestBin)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUDITTRAIL_") {
			env = append(env, kv)
		}
	}
	gw.Env = append(env,
		"AUDITTRAIL_KAFKA_BROKERS="+strings.Join(o.brokers, ","),
		"AUDITTRAIL_KAFKA_TOPIC="+topic,
		"AUDITTRAIL_KAFKA_PARTITIONS="+strconv.Itoa(o.partitions),
		"AUDITTRAIL_INGEST_ADDR="+proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS="+benchToken,
		// The bench measures the gateway's throughput, not its fair share:
		// its busiest workspace alone is over the default workspace limit.
		"AUDITTRAIL_INGEST_WORKSPACE_RATE=0",
		"AUDITTRAIL_INGEST_CREDENTIAL_RATE=0",
	)
	logs, err := os.CreateTemp("", "producerbench-ingest-*.log")
	if err != nil {
		return "", nil, err
	}
	cleanLogs := func() { logs.Close(); os.Remove(logs.Name()) }
	out := &proctest.Output{}
	w := io.MultiWriter(logs, out)
	gw.Stdout, gw.Stderr = w, w
	if err := gw.Start(); err != nil {
		cleanLogs()
		return "", nil, fmt.Errorf("start gateway: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = gw.Wait(); close(exited) }()
	stop = func() {
		_ = gw.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = gw.Process.Kill()
			<-exited
		}
		cleanLogs()
	}
	addr, err = out.Addr(ctx, "http", 60*time.Second, exited)
	if err == nil {
		err = proctest.WaitReady(ctx, addr, 60*time.Second, exited)
	}
	if err != nil {
		b, _ := os.ReadFile(logs.Name())
		stop()
		return "", nil, fmt.Errorf("gateway: %w\n%s", err, b)
	}
	return addr, stop, nil
}

// gateway measures the gateway with the events of section 1, encoded as
// request bodies before any clock starts.
func gateway(ctx context.Context, o options, topic string, events []event.Event, em emitterBaseline) error {
	addr, stop, err := startGateway(ctx, o, topic)
	if err != nil {
		return err
	}
	defer stop()
	b100, err := bodies(events, 100)
	if err != nil {
		return err
	}
	b1, err := bodies(events, 1)
	if err != nil {
		return err
	}
	l := newLoad("http://"+addr, benchToken)
	per := o.gwDuration / time.Duration(o.sweeps*len(o.senders)+2)
	// Warm-up (connections, the gateway's heap and the producer's
	// batches), not reported.
	l.closedLoop(ctx, b100, 100, o.senders[0], min(per, 2*time.Second))
	if err := sweep(ctx, o, addr, l, b100, per, em); err != nil {
		return err
	}
	fmt.Println("3. Ingest gateway, open-loop: requests sent on a fixed schedule whatever the gateway does")
	fmt.Printf("   %-32s %10s %10s %10s %10s %8s %14s\n", "load", "achieved/s", "p50", "p99", "max", "failed", "gw CPU µs/ev")
	for _, r := range []struct {
		label  string
		bodies [][]byte
		batch  int
	}{
		{"batch 100, 5,000 events/s", b100, 100},
		{"batch 1, 5,000 events/s", b1, 1},
	} {
		res, cpuUs, err := measure(ctx, addr, func() *loadResult { return l.openLoop(ctx, r.bodies, r.batch, 5000, per) })
		if err != nil {
			return fmt.Errorf("%s: %w", r.label, err)
		}
		fmt.Printf("   %-32s %10.0f %10s %10s %10s %8d %14.1f\n", r.label, res.rate(), res.pct(0.5), res.pct(0.99), res.pct(1), res.failed, cpuUs)
	}
	fmt.Println("   (latency per request, from its scheduled send time to the 202)")
	return nil
}

// sweepRow is one row of the sweep: the medians of its sweeps.
type sweepRow struct {
	senders               int
	rate, p50, p99, cpuUs []float64
	failed                int64
}

// sweep runs the closed-loop rows o.sweeps times, interleaved (every
// sweep goes through all the rows), and prints each row's medians, the
// plateau and the gateway's CPU per event over the emitter's.
func sweep(ctx context.Context, o options, addr string, l *gwLoad, b100 [][]byte, per time.Duration, em emitterBaseline) error {
	fmt.Println("2. Ingest gateway (its own process), closed-loop sweep: N senders in this process, each POSTing batches")
	repeats := "one sweep"
	if o.sweeps > 1 {
		repeats = fmt.Sprintf("medians of %d interleaved sweeps", o.sweeps)
	}
	fmt.Printf("   of 100 of the section 1 events (encoded beforehand) back to back, %s per row, %s\n",
		per.Round(10*time.Millisecond), repeats)
	fmt.Printf("   %8s %10s %10s %10s %8s %14s %10s\n", "senders", "events/s", "p50", "p99", "failed", "gw CPU µs/ev", "gw/emitter")
	rows := make([]sweepRow, len(o.senders))
	for range o.sweeps {
		for i, n := range o.senders {
			res, cpuUs, err := measure(ctx, addr, func() *loadResult { return l.closedLoop(ctx, b100, 100, n, per) })
			if err != nil {
				return fmt.Errorf("%d senders: %w", n, err)
			}
			r := &rows[i]
			r.senders, r.failed = n, r.failed+res.failed
			r.rate, r.cpuUs = append(r.rate, res.rate()), append(r.cpuUs, cpuUs)
			r.p50, r.p99 = append(r.p50, res.pct(0.5).Seconds()), append(r.p99, res.pct(0.99).Seconds())
		}
	}
	secs := func(xs []float64) time.Duration {
		return roundLatency(time.Duration(median(xs) * float64(time.Second)))
	}
	best := 0.0
	for _, r := range rows {
		best = max(best, median(r.rate))
		fmt.Printf("   %8d %10.0f %10s %10s %8d %14.1f %10.2f\n", r.senders, median(r.rate), secs(r.p50), secs(r.p99), r.failed,
			median(r.cpuUs), median(r.cpuUs)/em.cpuUs)
	}
	// The plateau: the fewest senders within 5% of the best rate.
	for _, r := range rows {
		if median(r.rate) >= 0.95*best {
			fmt.Printf("   plateau: %.0f events/s at %d senders (the first row within 5%% of the best, %.0f), p99 %s;\n",
				median(r.rate), r.senders, best, secs(r.p99))
			fmt.Printf("   gateway CPU %.1f µs/event there = %.2f x the emitter's (goal <= 2.0)\n", median(r.cpuUs), median(r.cpuUs)/em.cpuUs)
			break
		}
	}
	fmt.Printf("   baseline, same run: emitter %.0f events/s, %.1f µs process CPU/event (section 1 medians, same events)\n", em.rate, em.cpuUs)
	fmt.Println("   (latency per request, from sending it to the 202 after Kafka's acks=all; gateway CPU: its")
	fmt.Println("   process_cpu_seconds_total before and after the row, per event acknowledged)")
	fmt.Println()
	return nil
}

// measure runs one load and returns it with the gateway's process CPU per
// event acknowledged, in µs; a failed request fails the measurement.
func measure(ctx context.Context, addr string, run func() *loadResult) (*loadResult, float64, error) {
	const cpuMetric = "process_cpu_seconds_total"
	c0, n, err := proctest.Metric(ctx, addr, cpuMetric)
	if err == nil && n == 0 {
		err = errors.New("the gateway serves no " + cpuMetric)
	}
	if err != nil {
		return nil, 0, err
	}
	res := run()
	c1, _, err := proctest.Metric(ctx, addr, cpuMetric)
	if err != nil {
		return nil, 0, err
	}
	if res.firstErr != nil {
		return nil, 0, fmt.Errorf("%d events failed; first error: %w", res.failed, res.firstErr)
	}
	if res.events == 0 {
		return nil, 0, errors.New("no event acknowledged")
	}
	return res, (c1 - c0) * 1e6 / float64(res.events), nil
}
