// Package main is the loadgen command, which sends realistic audit traffic.
//
// It sends the traffic (see package loadgen) to the ingest gateway over
// HTTP, through the emitter library (asynchronous emits with callbacks), or
// straight to Kafka with a plain client, at a fixed rate or as fast as
// possible, for a count or a duration. It shows live progress on stderr and
// prints the achieved rate and acknowledgement-latency percentiles at the
// end.
//
//	loadgen -count 5000 -url http://127.0.0.1:8081 -token $TOKEN
//	loadgen -target emitter -duration 30s -rate 5000
//	loadgen -target kafka -duration 30s -rate 5000
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

type options struct {
	target      string
	url, token  string
	brokers     string
	topic       string
	count       int
	duration    time.Duration
	rate        int
	batch       int
	concurrency int
	workspaces  int
	demo        string
	zipf        float64
	spread      time.Duration
	seed        uint64
	quiet       bool
	maxBuffered int
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.target, "target", "http", "where to send: http (the ingest gateway), emitter (the Go library) or kafka (a plain client)")
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8081", "ingest gateway base URL (target http)")
	fs.StringVar(&o.token, "token", config.LoadgenToken.Get(config.FromOS()), "ingest token (target http); default $"+config.LoadgenToken.Name)
	fs.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers (targets emitter and kafka)")
	fs.StringVar(&o.topic, "topic", topics.Events, "Kafka topic (targets emitter and kafka)")
	fs.IntVar(&o.maxBuffered, "max-buffered", emitter.DefaultMaxBufferedEvents, "events the emitter buffers before it blocks (target emitter)")
	fs.IntVar(&o.count, "count", 0, "events to send (0: until -duration)")
	fs.DurationVar(&o.duration, "duration", 0, "how long to send (0: until -count)")
	fs.IntVar(&o.rate, "rate", 0, "events per second (0: as fast as possible)")
	fs.IntVar(&o.batch, "batch", 100, "events per request (target http), 1-1000")
	fs.IntVar(&o.concurrency, "concurrency", 4, "concurrent senders")
	fs.IntVar(&o.workspaces, "workspaces", 200, "number of workspaces")
	fs.StringVar(&o.demo, "demo-workspace", "", "name of the busiest workspace (default ws_0000)")
	fs.Float64Var(&o.zipf, "zipf", 1.2, "skew of events across workspaces (> 1)")
	fs.DurationVar(&o.spread, "spread", 0, "spread timestamps back over this window (e.g. 72h)")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	fs.BoolVar(&o.quiet, "quiet", false, "no live progress")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.target != "http" && o.target != "kafka" && o.target != "emitter":
		return o, fmt.Errorf("flag -target: want http, emitter or kafka, got %q", o.target)
	case o.maxBuffered < 1:
		return o, errors.New("flag -max-buffered must be at least 1")
	case o.count < 0:
		return o, errors.New("flag -count must not be negative")
	case o.duration < 0:
		return o, errors.New("flag -duration must not be negative")
	case o.count == 0 && o.duration == 0:
		return o, errors.New("flag -count or -duration is required")
	case o.rate < 0:
		return o, errors.New("flag -rate must not be negative")
	case o.batch < 1 || o.batch > 1000:
		return o, errors.New("flag -batch must be 1-1000")
	case o.concurrency < 1 || o.concurrency > 256:
		return o, errors.New("flag -concurrency must be 1-256")
	case o.workspaces < 1:
		return o, errors.New("flag -workspaces must be at least 1")
	case o.zipf <= 1:
		return o, errors.New("flag -zipf must be greater than 1")
	case o.target == "http" && o.token == "":
		return o, errors.New("flag -token (or $" + config.LoadgenToken.Name + ") is required for -target http")
	}
	return o, nil
}

func main() {
	o, err := parse(os.Args[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// sender delivers one batch and calls done once with the outcome of every
// event in it: before returning (http, kafka) or from the emitter's
// delivery callbacks, once per event (emitter).
type sender func(ctx context.Context, events []event.Event, done func(n int, err error))

func run(ctx context.Context, o options) error {
	var send sender
	var em *emitter.Emitter
	switch o.target {
	case "http":
		send = httpSender(o)
	case "emitter":
		var err error
		em, err = emitter.New(emitter.Config{Topic: o.topic, MaxBufferedEvents: o.maxBuffered},
			[]kgo.Opt{kgo.SeedBrokers(strings.Split(o.brokers, ",")...), kgo.ClientID("audittrail-loadgen")}, nil)
		if err != nil {
			return err
		}
		defer em.Close()
		send = emitterSender(em)
	case "kafka":
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(o.brokers, ",")...), kgo.DefaultProduceTopic(o.topic),
			kgo.RecordPartitioner(emitter.Partitioner()),
			kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		send = kafkaSender(cl)
	}
	sendCtx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	batch := o.batch
	if o.target != "http" {
		batch = 1
	}

	var (
		sent, failed atomic.Int64
		issued       atomic.Int64
		mu           sync.Mutex
		lat          []time.Duration
	)
	start := time.Now()
	// Pacing: each sender claims the next slot of the global schedule.
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Second * time.Duration(batch) / time.Duration(o.rate)
	}
	var slot atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range o.concurrency {
		wg.Go(func() {
			g, _ := loadgen.New(loadgen.Config{Workspaces: o.workspaces, DemoWorkspace: o.demo, ZipfS: o.zipf,
				Spread: o.spread, Seed: o.seed + uint64(w)*7919}, time.Now)
			events := make([]event.Event, 0, batch)
			for ctx.Err() == nil {
				n := batch
				if o.count > 0 {
					left := int64(o.count) - issued.Add(int64(batch)) + int64(batch)
					if left <= 0 {
						return
					}
					n = int(min(int64(batch), left))
				}
				if interval > 0 {
					due := start.Add(time.Duration(slot.Add(1)-1) * interval)
					if d := time.Until(due); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				events = events[:0]
				for range n {
					events = append(events, g.Next())
				}
				t0 := time.Now()
				var sendErr error
				send(sendCtx, events, func(n int, err error) {
					if err != nil {
						failed.Add(int64(n))
						firstErr.CompareAndSwap(nil, err)
						sendErr = err
						return
					}
					d := time.Since(t0)
					sent.Add(int64(n))
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				})
				if o.target != "emitter" && sendErr != nil {
					select { // do not spin on a down gateway
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	done := make(chan struct{})
	if !o.quiet {
		go progress(done, start, &sent, &failed)
	}
	wg.Wait()
	if em != nil {
		// Every event handed to the emitter is reported before the figures.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err := em.Flush(fctx)
		cancel()
		if err != nil {
			return fmt.Errorf("emitter: %w", err)
		}
	}
	close(done)
	elapsed := time.Since(start)

	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("sent %d events (%d failed) in %s: %.0f events/s\n", sent.Load(), failed.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds())
	unit := "request"
	if o.target != "http" {
		unit = "event"
	}
	fmt.Printf("ack latency per %s: p50 %s  p90 %s  p99 %s  max %s\n", unit, pct(0.50), pct(0.90), pct(0.99), pct(1))
	if em != nil {
		st := em.Stats()
		fmt.Printf("emitter: delivered %d, failed %d, at most %d events buffered (bound %d)\n", st.Delivered, st.Failed, st.PeakBuffered, o.maxBuffered)
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d events not acknowledged; first error: %w", failed.Load(), err)
	}
	return nil
}

func progress(done <-chan struct{}, start time.Time, sent, failed *atomic.Int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprint(os.Stderr, "\r\033[K")
			return
		case <-t.C:
			s := sent.Load()
			fmt.Fprintf(os.Stderr, "\r\033[K%6.1fs  sent %d  failed %d  %.0f events/s", time.Since(start).Seconds(), s, failed.Load(), float64(s)/time.Since(start).Seconds())
		}
	}
}

func httpSender(o options) sender {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}
	url := strings.TrimSuffix(o.url, "/") + "/v1/events"
	post := func(ctx context.Context, events []event.Event) error {
		var buf bytes.Buffer
		buf.WriteString(`{"batch":[`)
		for i := range events {
			if i > 0 {
				buf.WriteByte(',')
			}
			b, err := event.Encode(buf.AvailableBuffer(), &events[i])
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		buf.WriteString(`]}`)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &buf)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+o.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("gateway answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}
	return func(ctx context.Context, events []event.Event, done func(int, error)) {
		done(len(events), post(ctx, events))
	}
}

// emitterSender hands each event to the emitter, which reports its
// acknowledgement (or failure) to done from its delivery goroutine.
func emitterSender(em *emitter.Emitter) sender {
	return func(ctx context.Context, events []event.Event, done func(int, error)) {
		for _, e := range events {
			em.EmitAsync(ctx, e, func(_ event.Event, err error) { done(1, err) })
		}
	}
}

func kafkaSender(cl *kgo.Client) sender {
	produce := func(ctx context.Context, events []event.Event) error {
		recs := make([]*kgo.Record, len(events))
		for i := range events {
			e := &events[i]
			e.ReceivedAt = time.Now().UTC()
			v, err := event.Marshal(e)
			if err != nil {
				return err
			}
			recs[i] = &kgo.Record{Key: []byte(e.WorkspaceID), Value: v, Headers: []kgo.RecordHeader{
				{Key: topics.HeaderEvent, Value: []byte(e.Event)},
				{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
			}}
		}
		return cl.ProduceSync(ctx, recs...).FirstErr()
	}
	return func(ctx context.Context, events []event.Event, done func(int, error)) {
		done(len(events), produce(ctx, events))
	}
}
