package main

// End-to-end latency: from the producer's acknowledgement to queryable, at
// a fixed rate.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// latency emits events at a fixed rate through the emitter while the writer
// runs, and measures for the k-th acknowledged event the time until the
// table holds k rows: an upper bound of ack-to-queryable for that event
// (rows of later events may land first, never the reverse in count).
func latency(ctx context.Context, e *env, topic string, rate int, d time.Duration) (LatRow, error) {
	// The writer inserts into audit_events; use a fresh database per rate.
	db := fmt.Sprintf("%s_lat%d", e.DB, rate)
	if _, err := migrations.Apply(ctx, e.Conn, migrations.Options{Database: db, RetentionDays: 90}); err != nil {
		return LatRow{}, err
	}
	defer func() { _ = e.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()
	w, err := e.StartWriter(ctx, e.Conn, db, topic, fmt.Sprintf("bench-lat-%d-%s", rate, e.sfx), writer.Defaults().BatchAge)
	if err != nil {
		return LatRow{}, err
	}
	defer w.Stop()
	em, err := emitter.New(emitter.Config{Topic: topic}, e.Kafka.Options(), nil)
	if err != nil {
		return LatRow{}, err
	}
	defer em.Close()
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Seed: uint64(rate)}, time.Now)
	// Let the writer join its group before the clock starts.
	time.Sleep(3 * time.Second)

	total := int(float64(rate) * d.Seconds())
	start := time.Now()
	// Poll the row count while sending.
	var samples []sample
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		samples = pollCount(ctx, e, db+"."+migrations.Table, total, start.Add(d+30*time.Second))
	}()
	acks, sendErr := send(ctx, em, g, rate, total, start)
	achieved := float64(len(acks)) / time.Since(start).Seconds()
	<-pollDone
	if sendErr != nil {
		return LatRow{}, sendErr
	}
	lats, err := ackToQueryable(acks, samples)
	if err != nil {
		return LatRow{}, err
	}
	pct := func(p float64) float64 { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return LatRow{Rate: rate, Achieved: achieved, P50ms: pct(0.5), P99ms: pct(0.99), Maxms: lats[len(lats)-1]}, nil
}

// send emits total events from 64 senders, the i-th at start + i/rate
// seconds, and returns the times of their acknowledgements (unsorted) and
// the first error.
func send(ctx context.Context, em *emitter.Emitter, g *loadgen.Generator, rate, total int, start time.Time) ([]time.Time, error) {
	var mu sync.Mutex
	var acks []time.Time
	var sendErr error
	var wg sync.WaitGroup
	const senders = 64
	for s := range senders {
		wg.Go(func() {
			for i := s; i < total; i += senders {
				due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
				}
				mu.Lock()
				ev := g.Next()
				mu.Unlock()
				if err := em.Emit(ctx, ev); err != nil {
					mu.Lock()
					sendErr = cmp.Or(sendErr, err)
					mu.Unlock()
					continue
				}
				now := time.Now()
				mu.Lock()
				acks = append(acks, now)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, sendErr
}

// sample is the table's row count at a time.
type sample struct {
	at time.Time
	n  uint64
}

// pollCount samples the table's row count every 10 ms until it holds total
// rows or the deadline passes.
func pollCount(ctx context.Context, e *env, table string, total int, deadline time.Time) []sample {
	var samples []sample
	for time.Now().Before(deadline) {
		c, err := count(ctx, e.Conn, table)
		if err == nil {
			samples = append(samples, sample{time.Now(), c})
			if int(c) >= total {
				return samples
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return samples
}

// ackToQueryable is, for the k-th acknowledgement, the time in ms until
// the first sample counting k rows; sorted.
func ackToQueryable(acks []time.Time, samples []sample) ([]float64, error) {
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var lats []float64
	j := 0
	for k, ack := range acks {
		for j < len(samples) && int(samples[j].n) < k+1 {
			j++
		}
		if j == len(samples) {
			return nil, fmt.Errorf("only %d of %d events became queryable", samples[len(samples)-1].n, len(acks))
		}
		lats = append(lats, max(0, samples[j].at.Sub(ack).Seconds()*1000))
	}
	slices.Sort(lats)
	return lats, nil
}
