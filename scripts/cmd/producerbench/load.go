package main

// The gateway's load: request bodies encoded before the clock starts, sent
// closed-loop (a number of senders, each waiting for its answer) or
// open-loop (a schedule of send times, latency counted from the scheduled
// time, so a slow gateway cannot slow the load down).

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// maxOpen bounds the requests in flight of an open-loop load; a request
// due while the bound is reached waits, and its wait counts in its latency.
const maxOpen = 1024

// gwLoad sends pre-encoded batches to the gateway's /v1/events.
type gwLoad struct {
	client *http.Client
	url    string
	token  string
}

func newLoad(base, token string) *gwLoad {
	return &gwLoad{
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: maxOpen}},
		url:    strings.TrimSuffix(base, "/") + "/v1/events", token: token,
	}
}

// bodies encodes events as request bodies of batch events each.
func bodies(events []event.Event, batch int) ([][]byte, error) {
	var out [][]byte
	for i := 0; i+batch <= len(events); i += batch {
		buf := []byte(`{"batch":[`)
		for j := i; j < i+batch; j++ {
			if j > i {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = event.Encode(buf, &events[j]); err != nil {
				return nil, err
			}
		}
		out = append(out, append(buf, `]}`...))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%d events make no batch of %d", len(events), batch)
	}
	return out, nil
}

// loadResult is what one load measured.
type loadResult struct {
	events, failed int64
	elapsed        time.Duration
	lats           []time.Duration // per request
	firstErr       error
	mu             sync.Mutex
}

func (r *loadResult) record(n int, lat time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed += int64(n)
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	r.events += int64(n)
	r.lats = append(r.lats, lat)
}

func (r *loadResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// pct is the p-quantile of the request latencies.
func (r *loadResult) pct(p float64) time.Duration {
	if len(r.lats) == 0 {
		return 0
	}
	slices.Sort(r.lats)
	return roundLatency(r.lats[min(len(r.lats)-1, int(p*float64(len(r.lats))))])
}

// roundLatency rounds d for printing: to 10 µs, or to 1 ms from 1 s.
func roundLatency(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// closedLoop runs senders goroutines for d, each posting the next body as
// soon as its previous request was answered.
func (l *gwLoad) closedLoop(ctx context.Context, bodies [][]byte, batch, senders int, d time.Duration) *loadResult {
	res := &loadResult{}
	var next atomic.Int64
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				b := bodies[int(next.Add(1)-1)%len(bodies)]
				t0 := time.Now()
				err := l.post(ctx, b)
				res.record(batch, time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// openLoop sends rate events/s for d on a fixed schedule: request k is
// due at start + k*batch/rate whatever the gateway does, and its latency
// runs from that time to its answer.
func (l *gwLoad) openLoop(ctx context.Context, bodies [][]byte, batch, rate int, d time.Duration) *loadResult {
	res := &loadResult{}
	interval := time.Second * time.Duration(batch) / time.Duration(rate)
	sem := make(chan struct{}, maxOpen)
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; ctx.Err() == nil; k++ {
		due := start.Add(time.Duration(k) * interval)
		if due.Sub(start) >= d {
			break
		}
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		sem <- struct{}{}
		b := bodies[k%len(bodies)]
		wg.Go(func() {
			defer func() { <-sem }()
			err := l.post(ctx, b)
			res.record(batch, time.Since(due), err)
		})
	}
	wg.Wait()
	// The schedule's length at least: the last request is due just
	// before it ends.
	res.elapsed = max(time.Since(start), d)
	return res
}

func (l *gwLoad) post(ctx context.Context, body []byte) error {
	_, err := drillkit.Post(ctx, l.client, l.url, l.token, body)
	return err
}
