package main

// One run: the neighbours (and the flood) sending at their rates, and their
// latency from the producer's acknowledgement to queryable.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

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
			if allStored(got, want) || time.Now().After(deadline) {
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
		if allStored(got, want) {
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
		if allStored(got, want) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("stored %v of %v within %s", got, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allStored reports whether every workspace of want holds its rows.
func allStored(got, want map[string]int) bool {
	for ws, n := range want {
		if got[ws] < n {
			return false
		}
	}
	return true
}

// counts is the rows of each workspace of want (the table's order starts
// with workspace_id, so this reads only their ranges).
func (b *bench) counts(ctx context.Context, want map[string]int) (map[string]int, error) {
	ws := make([]any, 0, len(want))
	for w := range want {
		ws = append(ws, w)
	}
	rows, err := b.Conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, count() FROM %s.%s WHERE workspace_id IN ? GROUP BY workspace_id", b.DB, migrations.Table),
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
