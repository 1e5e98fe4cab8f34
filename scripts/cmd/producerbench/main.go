// Package main is the producerbench command, which measures the producers on
// the real broker.
//
// It prints a table (scripts/bench-producers runs it):
//
//  1. Emitter throughput against plain franz-go producing the same records
//     to the same topic, side by side in one run, alternating rounds. Both
//     use acks=all, idempotence, zstd, a 5 ms linger and the murmur2 key
//     partitioner; the emitter also validates and encodes every event.
//     The emitter's process CPU per event (getrusage of this process
//     around each emitter round, nothing else running in it) is the
//     baseline of the gateway's.
//  2. The ingest gateway, started here as its own process on a free port
//     with its own topic, loaded from this process with the same events
//     encoded as request bodies beforehand (gateway.go, load.go): a sweep
//     of closed-loop senders (8 to 128) whose plateau is its capacity,
//     with each row's p99 and the gateway's process CPU per event
//     (process_cpu_seconds_total from its /metrics) over the emitter's.
//  3. The gateway under open-loop load at 5,000 events/s (batches of 100
//     and of 1): latency from each request's scheduled send time.
//
// The topics it creates are deleted at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

type options struct {
	brokers     []string
	partitions  int
	events      int
	rounds      int
	ingestBin   string
	gwDuration  time.Duration
	senders     []int
	sweeps      int
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
	fs.DurationVar(&o.gwDuration, "gateway-duration", 70*time.Second, "length of all the gateway measurements, shared equally by the sweeps' rows and the 2 open-loop rows")
	fs.IntVar(&o.sweeps, "sweeps", 1, "times the gateway sweep runs, interleaved (rows show medians)")
	senders := fs.String("senders", "8,16,32,64,128", "closed-loop senders of each row of the gateway sweep")
	fs.BoolVar(&o.skipGateway, "skip-gateway", false, "measure only the emitter")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	o.brokers = strings.Split(brokers, ",")
	for _, f := range strings.Split(*senders, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxOpen {
			fmt.Fprintf(os.Stderr, "producerbench: -senders: %q is not a number of senders (1-%d)\n", f, maxOpen)
			os.Exit(2)
		}
		o.senders = append(o.senders, n)
	}
	if o.sweeps < 1 {
		fmt.Fprintln(os.Stderr, "producerbench: -sweeps must be at least 1")
		os.Exit(2)
	}
	if !o.skipGateway && o.ingestBin == "" {
		fmt.Fprintln(os.Stderr, "producerbench: -ingest is required (or -skip-gateway)")
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
	events, em, err := throughput(ctx, o, throughputTopic)
	if err != nil {
		return err
	}
	if o.skipGateway {
		return nil
	}
	return gateway(ctx, o, gatewayTopic, events, em)
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
// callback. It returns the time taken and this process's CPU time over it.
func emitterRound(ctx context.Context, brokers []string, topic string, events []event.Event) (d, cpu time.Duration, err error) {
	em, err := emitter.New(emitter.Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	if err != nil {
		return 0, 0, err
	}
	defer em.Close()
	if err := em.Ping(ctx); err != nil {
		return 0, 0, err
	}
	var failed atomic.Int64
	var first atomic.Value
	runtime.GC() // the previous round's garbage is not the emitter's
	cpu0 := benchkit.SelfCPU()
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
		return 0, 0, err
	}
	d, cpu = time.Since(start), benchkit.SelfCPU()-cpu0
	if failed.Load() > 0 {
		return 0, 0, fmt.Errorf("emitter: %d events failed: %v", failed.Load(), first.Load())
	}
	return d, cpu, nil
}

// throughput prints section 1 and returns its events and the emitter's
// medians, the gateway's baseline.
func throughput(ctx context.Context, o options, topic string) ([]event.Event, emitterBaseline, error) {
	events, recs, avg, err := sampleEvents(o.events)
	if err != nil {
		return nil, emitterBaseline{}, err
	}
	fmt.Printf("1. Emitter vs plain franz-go: %d loadgen events per round (avg %d bytes JSON), one topic, rounds alternate\n", o.events, avg)
	fmt.Printf("   %-6s %14s %14s %8s %16s %16s\n", "round", "franz-go ev/s", "emitter ev/s", "ratio", "pre-encoded ev/s", "emitter CPU µs/ev")
	var plainRates, emitterRates, rawRates, ratios, cpus []float64
	for round := 1; round <= o.rounds; round++ {
		pd, err := plainRound(ctx, o.brokers, topic, events, nil)
		if err != nil {
			return nil, emitterBaseline{}, err
		}
		ed, ecpu, err := emitterRound(ctx, o.brokers, topic, events)
		if err != nil {
			return nil, emitterBaseline{}, err
		}
		rd, err := plainRound(ctx, o.brokers, topic, nil, recs)
		if err != nil {
			return nil, emitterBaseline{}, err
		}
		p, e, r := float64(o.events)/pd.Seconds(), float64(o.events)/ed.Seconds(), float64(o.events)/rd.Seconds()
		c := float64(ecpu.Microseconds()) / float64(o.events)
		plainRates, emitterRates, rawRates, cpus = append(plainRates, p), append(emitterRates, e), append(rawRates, r), append(cpus, c)
		ratios = append(ratios, e/p)
		fmt.Printf("   %-6d %14.0f %14.0f %7.0f%% %16.0f %16.1f\n", round, p, e, 100*e/p, r, c)
	}
	fmt.Printf("   %-6s %14.0f %14.0f %7.0f%% %16.0f %16.1f   (ratio: median of the rounds' ratios; target >= 80%%)\n",
		"median", median(plainRates), median(emitterRates), 100*median(ratios), median(rawRates), median(cpus))
	fmt.Println("   franz-go: encode each event + Produce; emitter: EmitAsync (validate + encode + bounded buffer + callback);")
	fmt.Println("   pre-encoded: Produce of records encoded before the clock starts. All: acks=all, idempotent, zstd, linger 5ms.")
	fmt.Println("   emitter CPU: this process's user+system time over the emitter's round (getrusage), per event.")
	fmt.Println()
	return events, emitterBaseline{rate: median(emitterRates), cpuUs: median(cpus)}, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
