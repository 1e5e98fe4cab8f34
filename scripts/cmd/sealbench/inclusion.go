package main

// From producer acknowledgement to inclusion in a signed checkpoint: events
// are offered open loop at a fixed rate; each event's time runs from its
// acknowledgement to the first checkpoint read from the checkpoints topic
// whose size covers its leaf.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// InclusionRow is the inclusion latency at one offered rate.
type InclusionRow struct {
	Rate      int     `json:"rate"`
	Events    int     `json:"events"`
	IntervalS float64 `json:"interval_s"`
	P50s      float64 `json:"p50_s"`
	P99s      float64 `json:"p99_s"`
	Maxs      float64 `json:"max_s"`
	// BoundS is the target for P99s: the interval and 5 s.
	BoundS float64 `json:"bound_s"`
}

// seenCheckpoint is a checkpoint as a witness first read it.
type seenCheckpoint struct {
	size int64
	at   time.Time
}

func (e *env) inclusion(ctx context.Context, rate int, d, interval time.Duration) (InclusionRow, error) {
	row := InclusionRow{Rate: rate, IntervalS: interval.Seconds(), BoundS: interval.Seconds() + 5}
	topic, err := e.topic(ctx, "incl", false)
	if err != nil {
		return row, err
	}
	cps, err := e.topic(ctx, "inclcp", true)
	if err != nil {
		return row, err
	}
	db, err := e.database(ctx, "incl")
	if err != nil {
		return row, err
	}
	group := "sealbench-writer-" + topic
	s, err := e.startSealer(ctx, db, topic, cps, group, interval)
	if err != nil {
		return row, err
	}
	defer s.stop()
	w, err := e.startWriter(ctx, db, topic, group, e.offsets)
	if err != nil {
		return row, err
	}
	defer w.Stop()
	if err := waitFor(ctx, time.Minute, "writer assigned", func() bool { return w.Gauge("audittrail_writer_assigned_partitions") > 0 }); err != nil {
		return row, err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watch := &witness{seen: map[string][]seenCheckpoint{}}
	watchDone := make(chan error, 1)
	go func() { watchDone <- watch.run(wctx, e, cps, s.vkey) }()
	defer func() { stopWatch(); <-watchDone }()

	acks, err := e.offer(ctx, topic, rate, d)
	if err != nil {
		return row, err
	}
	leaves, err := e.leafIndexes(ctx, db, len(acks), d+interval+5*time.Minute)
	if err != nil {
		return row, err
	}
	var lat []float64
	err = waitFor(ctx, interval+time.Minute, "every event in a published checkpoint", func() bool {
		lat = lat[:0]
		for id, a := range acks {
			l := leaves[id]
			at, ok := watch.covering(l.WorkspaceID, int64(l.Index))
			if !ok {
				return false
			}
			lat = append(lat, max(0, at.Sub(a).Seconds()))
		}
		return true
	})
	if err != nil {
		return row, err
	}
	slices.Sort(lat)
	row.Events, row.P50s, row.P99s, row.Maxs = len(lat), pct(lat, 0.5), pct(lat, 0.99), lat[len(lat)-1]
	return row, nil
}

// offer produces rate events per second for d, open loop, and returns
// each acknowledged event's acknowledgement time by id.
func (e *env) offer(ctx context.Context, topic string, rate int, d time.Duration) (map[string]time.Time, error) {
	next := events(99)
	var (
		mu    sync.Mutex
		acks  = map[string]time.Time{}
		first error
		wg    sync.WaitGroup
	)
	total := int(float64(rate) * d.Seconds())
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; {
		for ; i < total && !start.Add(time.Duration(int64(i)*int64(time.Second)/int64(rate))).After(time.Now()); i++ {
			ev := next()
			r, err := record(topic, ev)
			if err != nil {
				return nil, err
			}
			wg.Add(1)
			e.Client.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil && first == nil {
					first = err
				} else if err == nil {
					acks[ev.ID] = time.Now()
				}
			})
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if first != nil {
		return nil, fmt.Errorf("produce: %w", first)
	}
	return acks, ctx.Err()
}

// leafIndexes waits until n events have a leaf and returns them by id.
func (e *env) leafIndexes(ctx context.Context, db string, n int, within time.Duration) (map[string]migrations.Leaf, error) {
	out := map[string]migrations.Leaf{}
	err := waitFor(ctx, within, fmt.Sprintf("%d leaves", n), func() bool {
		rows, err := e.Conn.Query(ctx, "SELECT workspace_id, leaf_index, id FROM "+db+"."+migrations.LeavesTable+" LIMIT 1 BY workspace_id, leaf_index")
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var l migrations.Leaf
			if rows.Scan(&l.WorkspaceID, &l.Index, &l.ID) == nil {
				out[l.ID] = l
			}
		}
		return len(out) >= n
	})
	return out, err
}

// witness follows the checkpoints topic as an outside witness would,
// keeping the checkpoints that verify with the verifier key.
type witness struct {
	mu   sync.Mutex
	seen map[string][]seenCheckpoint // by workspace, in the order read
}

func (w *witness) run(ctx context.Context, e *env, topic, vkey string) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(e.Kafka.Options(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		at := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			n, err := note.Open(r.Value, note.VerifierList(v))
			if err != nil {
				return
			}
			_, size, _, err := sealer.ParseCheckpoint(n.Text)
			if err != nil {
				return
			}
			w.mu.Lock()
			w.seen[string(r.Key)] = append(w.seen[string(r.Key)], seenCheckpoint{size: size, at: at})
			w.mu.Unlock()
		})
	}
	return nil
}

// covering returns when the first checkpoint of ws covering leaf index
// was read.
func (w *witness) covering(ws string, index int64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.seen[ws] {
		if c.size > index {
			return c.at, true
		}
	}
	return time.Time{}, false
}

func pct(v []float64, p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }

// median is the middle value of v, the mean of the two middle ones for
// an even count.
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// markdown renders the report; the CPU columns are per million events
// while the writer stored them; the sealer's lookups are its reads of what
// the writer stored (system.query_log).
func markdown(r Report) string {
	md := fmt.Sprintf("# Integrity log cost (%s)\n\nClickHouse %s; quick=%v; sealer sample %d, audit %d.\n\n| Run | Sealer | Events | Stored/s | Sealed/s | Process CPU s/M | ClickHouse CPU s/M | Sealer lookups | Rows they read |\n|---|---|---|---|---|---|---|---|---|\n",
		r.Date, r.ClickHouse, r.Quick, r.Sample, r.Audit)
	for i, t := range r.Throughput {
		md += fmt.Sprintf("| %d | %v | %d | %.0f | %.0f | %.2f | %.2f | %d | %d |\n", i+1, t.Sealer, t.Events, t.Rate, t.SealedRate, t.ProcessCPU, t.ServerCPU, t.SealerReads, t.SealerReadRows)
	}
	in := r.Inclusion
	md += fmt.Sprintf("\nWriter throughput with the sealer over without (medians): **%.3f** (target >= 0.9).\n\n"+
		"From producer acknowledgement to a published signed checkpoint at %d events/s offered (%d events, interval %.0f s): p50 %.1f s, **p99 %.1f s**, max %.1f s (target p99 <= %.0f s).\n",
		r.OnOverOff, in.Rate, in.Events, in.IntervalS, in.P50s, in.P99s, in.Maxs, in.BoundS)
	return md
}
