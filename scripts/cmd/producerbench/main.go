// Package main is the producerbench command, which measures the producers on
// the real broker.
//
// It prints a table (scripts/bench-producers runs it):
//
//  1. Emitter throughput against plain franz-go producing the same records
//     to the same topic, side by side in one run, alternating rounds. Both
//     use acks=all, idempotence, zstd, a 5 ms linger and the murmur2 key
//     partitioner; the emitter also validates and encodes every event.
//  2. The ingest gateway, started here as its own process on a free port
//     with its own topic, loaded by the loadgen binary from a second
//     process: events/s at batch size 100, and latency at a fixed
//     5,000 events/s.
//
// The topics it creates are deleted at the end.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

type options struct {
	brokers     []string
	partitions  int
	events      int
	rounds      int
	ingestBin   string
	loadgenBin  string
	gwDuration  time.Duration
	concurrency int
	skipGateway bool
}

func main() {
	var o options
	var brokers string
	// The brokers the services use (config.KafkaBrokers) unless -brokers
	// says otherwise.
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	if err := env.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "producerbench:", err)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("producerbench", flag.ContinueOnError)
	fs.StringVar(&brokers, "brokers", strings.Join(kc.Brokers, ","), "Kafka brokers (default: "+config.KafkaBrokers.Name+")")
	fs.IntVar(&o.partitions, "partitions", topics.DefaultPartitions, "partitions of the benchmark topics")
	fs.IntVar(&o.events, "events", 100000, "events per throughput round")
	fs.IntVar(&o.rounds, "rounds", 5, "throughput rounds per producer")
	fs.StringVar(&o.ingestBin, "ingest", "", "path of the ingest gateway binary (required unless -skip-gateway)")
	fs.StringVar(&o.loadgenBin, "loadgen", "", "path of the loadgen binary (required unless -skip-gateway)")
	fs.DurationVar(&o.gwDuration, "gateway-duration", 15*time.Second, "length of each gateway measurement")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent loadgen senders for the events/s measurement")
	fs.BoolVar(&o.skipGateway, "skip-gateway", false, "measure only the emitter")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	o.brokers = strings.Split(brokers, ",")
	if !o.skipGateway && (o.ingestBin == "" || o.loadgenBin == "") {
		fmt.Fprintln(os.Stderr, "producerbench: -ingest and -loadgen are required (or -skip-gateway)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "producerbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	sfx := strconv.FormatInt(time.Now().UnixNano(), 36)
	throughputTopic, gatewayTopic := "bench-producers-"+sfx, "bench-gateway-"+sfx
	if err := kafkaconn.EnsureTopics(ctx, cl, o.partitions, nil, throughputTopic, gatewayTopic); err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, throughputTopic, gatewayTopic)
	}()

	fmt.Printf("producerbench %s, %d CPUs, broker %s, %d partitions\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), strings.Join(o.brokers, ","), o.partitions)
	if err := throughput(ctx, o, throughputTopic); err != nil {
		return err
	}
	if o.skipGateway {
		return nil
	}
	return gateway(ctx, o, gatewayTopic)
}

// ---------------------------------------------------------------------------
// emitter vs plain franz-go

func sampleEvents(n int) ([]event.Event, []*kgo.Record, int, error) {
	g, err := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.2, Seed: 42}, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	events := make([]event.Event, n)
	recs := make([]*kgo.Record, n)
	bytes := 0
	for i := range events {
		events[i] = g.Next()
		e := events[i]
		e.ReceivedAt = time.Now().UTC()
		v, err := event.Marshal(&e)
		if err != nil {
			return nil, nil, 0, err
		}
		bytes += len(v)
		recs[i] = &kgo.Record{Key: []byte(e.WorkspaceID), Value: v, Headers: []kgo.RecordHeader{
			{Key: topics.HeaderEvent, Value: []byte(e.Event)},
			{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
		}}
	}
	return events, recs, bytes / n, nil
}

// plainRound produces the events with a plain franz-go client configured
// like the emitter's, and waits for every ack. Without recs it encodes each
// event as it goes, as a service using franz-go directly would; with recs
// it produces copies of those ready records (a record is never produced
// twice).
func plainRound(ctx context.Context, brokers []string, topic string, events []event.Event, recs []*kgo.Record) (time.Duration, error) {
	// The emitter's client settings, with the client's buffer bounded like
	// the emitter's (the emitter lets its client buffer twice its own bound
	// and enforces the bound itself).
	opts := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, emitter.ProducerOptions(emitter.Config{Topic: topic})...)
	opts = append(opts, kgo.MaxBufferedRecords(emitter.DefaultMaxBufferedEvents))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return 0, err
	}
	var copies []*kgo.Record
	if recs != nil {
		copies = make([]*kgo.Record, len(recs))
		for i, r := range recs {
			c := *r
			copies[i] = &c
		}
	}
	var failed atomic.Int64
	var first atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			first.CompareAndSwap(nil, err)
		}
	}
	start := time.Now()
	if copies != nil {
		for _, r := range copies {
			cl.Produce(ctx, r, promise)
		}
	} else {
		for i := range events {
			e := events[i]
			e.ReceivedAt = time.Now().UTC()
			v, err := event.Marshal(&e)
			if err != nil {
				return 0, err
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(e.WorkspaceID), Value: v, Headers: []kgo.RecordHeader{
				{Key: topics.HeaderEvent, Value: []byte(e.Event)},
				{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
			}}, promise)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if failed.Load() > 0 {
		return 0, fmt.Errorf("plain franz-go: %d records failed: %v", failed.Load(), first.Load())
	}
	return d, nil
}

// emitterRound emits the events asynchronously and waits for every
// callback.
func emitterRound(ctx context.Context, brokers []string, topic string, events []event.Event) (time.Duration, error) {
	em, err := emitter.New(emitter.Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	if err != nil {
		return 0, err
	}
	defer em.Close()
	if err := em.Ping(ctx); err != nil {
		return 0, err
	}
	var failed atomic.Int64
	var first atomic.Value
	start := time.Now()
	for _, e := range events {
		em.EmitAsync(ctx, e, func(_ event.Event, err error) {
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			}
		})
	}
	if err := em.Flush(ctx); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if failed.Load() > 0 {
		return 0, fmt.Errorf("emitter: %d events failed: %v", failed.Load(), first.Load())
	}
	return d, nil
}

func throughput(ctx context.Context, o options, topic string) error {
	events, recs, avg, err := sampleEvents(o.events)
	if err != nil {
		return err
	}
	fmt.Printf("1. Emitter vs plain franz-go: %d loadgen events per round (avg %d bytes JSON), one topic, rounds alternate\n", o.events, avg)
	fmt.Printf("   %-6s %14s %14s %8s %16s\n", "round", "franz-go ev/s", "emitter ev/s", "ratio", "pre-encoded ev/s")
	var plainRates, emitterRates, rawRates, ratios []float64
	for round := 1; round <= o.rounds; round++ {
		pd, err := plainRound(ctx, o.brokers, topic, events, nil)
		if err != nil {
			return err
		}
		ed, err := emitterRound(ctx, o.brokers, topic, events)
		if err != nil {
			return err
		}
		rd, err := plainRound(ctx, o.brokers, topic, nil, recs)
		if err != nil {
			return err
		}
		p, e, r := float64(o.events)/pd.Seconds(), float64(o.events)/ed.Seconds(), float64(o.events)/rd.Seconds()
		plainRates, emitterRates, rawRates = append(plainRates, p), append(emitterRates, e), append(rawRates, r)
		ratios = append(ratios, e/p)
		fmt.Printf("   %-6d %14.0f %14.0f %7.0f%% %16.0f\n", round, p, e, 100*e/p, r)
	}
	fmt.Printf("   %-6s %14.0f %14.0f %7.0f%% %16.0f   (ratio: median of the rounds' ratios; target >= 80%%)\n",
		"median", median(plainRates), median(emitterRates), 100*median(ratios), median(rawRates))
	fmt.Println("   franz-go: encode each event + Produce; emitter: EmitAsync (validate + encode + bounded buffer + callback);")
	fmt.Println("   pre-encoded: Produce of records encoded before the clock starts. All: acks=all, idempotent, zstd, linger 5ms.")
	fmt.Println()
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ---------------------------------------------------------------------------
// gateway

const benchToken = "producerbench-ingest-token-0123456789"

func gateway(ctx context.Context, o options, topic string) error {
	addr := proctest.FreeAddr()
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
		"AUDITTRAIL_INGEST_ADDR="+addr,
		"AUDITTRAIL_INGEST_TOKENS="+benchToken,
		// The bench measures the gateway's throughput, not its fair share:
		// its busiest workspace alone is over the default workspace limit.
		"AUDITTRAIL_INGEST_WORKSPACE_RATE=0",
		"AUDITTRAIL_INGEST_CREDENTIAL_RATE=0",
	)
	logs, err := os.CreateTemp("", "producerbench-ingest-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(logs.Name())
	defer logs.Close()
	gw.Stdout, gw.Stderr = logs, logs
	if err := gw.Start(); err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = gw.Wait(); close(exited) }()
	defer func() {
		_ = gw.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = gw.Process.Kill()
			<-exited
		}
	}()
	base := "http://" + addr
	if err := proctest.WaitReady(ctx, addr, 60*time.Second, exited); err != nil {
		b, _ := os.ReadFile(logs.Name())
		return fmt.Errorf("gateway: %w\n%s", err, b)
	}

	fmt.Printf("2. Ingest gateway (its own process, topic %s), load from the loadgen process\n", topic)
	fmt.Printf("   %-44s %10s %10s %10s %10s\n", "load", "events/s", "p50", "p99", "failed")
	runs := []struct {
		label string
		args  []string
	}{
		{fmt.Sprintf("batch 100, as fast as possible, %d senders", o.concurrency),
			[]string{"-batch", "100", "-concurrency", strconv.Itoa(o.concurrency)}},
		{"batch 100, fixed 5,000 events/s",
			[]string{"-batch", "100", "-rate", "5000", "-concurrency", "16"}},
		{"batch 1, fixed 5,000 events/s",
			[]string{"-batch", "1", "-rate", "5000", "-concurrency", "128"}},
	}
	for _, r := range runs {
		args := append([]string{"-target", "http", "-url", base, "-token", benchToken, "-quiet",
			"-workspaces", "1000", "-duration", o.gwDuration.String()}, r.args...)
		res, err := loadgenRun(ctx, o.loadgenBin, args)
		if err != nil {
			return fmt.Errorf("%s: %w", r.label, err)
		}
		fmt.Printf("   %-44s %10.0f %10s %10s %10d\n", r.label, res.rate, res.p50, res.p99, res.failed)
	}
	fmt.Println("   (latency per request, from sending it to the 202 after Kafka's acks=all)")
	return nil
}

type loadResult struct {
	rate     float64
	failed   int64
	p50, p99 string
}

var (
	sentLine = regexp.MustCompile(`^sent (\d+) events \((\d+) failed\) in \S+: (\d+) events/s`)
	latLine  = regexp.MustCompile(`^ack latency per \w+: p50 (\S+)\s+p90 (\S+)\s+p99 (\S+)`)
)

func loadgenRun(ctx context.Context, bin string, args []string) (loadResult, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var res loadResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	found := 0
	for sc.Scan() {
		if m := sentLine.FindStringSubmatch(sc.Text()); m != nil {
			res.failed, _ = strconv.ParseInt(m[2], 10, 64)
			res.rate, _ = strconv.ParseFloat(m[3], 64)
			found++
		}
		if m := latLine.FindStringSubmatch(sc.Text()); m != nil {
			res.p50, res.p99 = m[1], m[3]
			found++
		}
	}
	if err != nil {
		return res, fmt.Errorf("loadgen %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if found != 2 {
		return res, fmt.Errorf("unexpected loadgen output:\n%s", out)
	}
	return res, nil
}
