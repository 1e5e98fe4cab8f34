package main

// End-to-end latency per event, under open-loop load: events are offered
// on a fixed schedule, and each one's time is taken from its own producer
// acknowledgement (and from its scheduled send time) to the first read of
// ClickHouse that returns it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// LatRow is the end-to-end latency at one offered rate.
type LatRow struct {
	Rate     int     `json:"rate"`          // offered, events per second
	Achieved float64 `json:"achieved_rate"` // acknowledged events / (last acknowledgement - start)
	Events   int     `json:"events"`        // acknowledged, each with its own latency
	// From each event's acknowledgement to the first read returning it.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
	// From each event's scheduled send time to the first read returning
	// it: includes any wait of the sender (the open-loop figure).
	SchedP50ms float64 `json:"sched_p50_ms"`
	SchedP99ms float64 `json:"sched_p99_ms"`
	SchedMaxms float64 `json:"sched_max_ms"`
	BatchAge   string  `json:"writer_batch_age"`
}

// latency offers rate events per second for d through the emitter, open
// loop, while a writer with its default batch age runs, and measures each
// event's latency.
func latency(ctx context.Context, e *env, topic string, rate int, d time.Duration) (LatRow, error) {
	// The writer inserts into audit_events; use a fresh database per rate.
	db := fmt.Sprintf("%s_lat%d", e.DB, rate)
	if _, err := migrations.Apply(ctx, e.Conn, migrations.Options{Database: db, RetentionDays: 90}); err != nil {
		return LatRow{}, err
	}
	defer func() { _ = e.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()
	batchAge := writer.Defaults().BatchAge
	w, err := e.StartWriter(ctx, e.Conn, db, topic, fmt.Sprintf("bench-lat-%d-%s", rate, e.sfx), batchAge)
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
	// The clock starts once the writer holds its partitions.
	if err := waitAssigned(ctx, w.Gauge); err != nil {
		return LatRow{}, err
	}

	total := int(float64(rate) * d.Seconds())
	tr := newTrace(total, rate, time.Now())
	var reader firstReads
	readDone := make(chan error, 1)
	go func() {
		readDone <- reader.run(ctx, e, db, migrations.Table, tr.allSeen, tr.start.Add(d+30*time.Second))
	}()
	offer(ctx, em, g, tr)
	flushErr := em.Flush(ctx)
	tr.sent.Store(true)
	readErr := <-readDone
	if err := errors.Join(tr.err(), flushErr, readErr); err != nil {
		return LatRow{}, err
	}
	row, err := tr.latencies(reader.seen)
	row.Rate, row.BatchAge = rate, batchAge.String()
	return row, err
}

// waitAssigned waits (up to a minute) until the writer reports partitions.
func waitAssigned(ctx context.Context, gauge func(string) float64) error {
	deadline := time.Now().Add(time.Minute)
	for gauge("audittrail_writer_assigned_partitions") == 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the writer was assigned no partitions within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// trace is what happened to each offered event: event i is due at start +
// i/rate, and is acknowledged (or failed) by the emitter's callback.
type trace struct {
	start time.Time
	rate  int
	sent  atomic.Bool // every event offered and the emitter flushed
	acked atomic.Int64

	mu       sync.Mutex
	ids      []string
	ackAt    []time.Time // zero: not acknowledged
	firstErr error
	failed   int
}

func newTrace(total, rate int, start time.Time) *trace {
	return &trace{start: start, rate: rate, ids: make([]string, total), ackAt: make([]time.Time, total)}
}

// due is event i's scheduled send time.
func (t *trace) due(i int) time.Time {
	return t.start.Add(time.Duration(int64(i) * int64(time.Second) / int64(t.rate)))
}

func (t *trace) ack(i int, ev event.Event, err error, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.ids[i], t.ackAt[i] = ev.ID, at
	t.acked.Add(1)
}

func (t *trace) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed > 0 {
		return fmt.Errorf("%d events failed, the first: %w", t.failed, t.firstErr)
	}
	return nil
}

// allSeen reports whether the reads returned every acknowledged event.
func (t *trace) allSeen(seen int) bool {
	return t.sent.Load() && int64(seen) >= t.acked.Load()
}

// offer hands the events to the emitter open loop: each at its scheduled
// time, whatever happened to the ones before (EmitAsync does not wait for
// the acknowledgement; it blocks only when the emitter's buffer is full,
// and then the schedule slips, which the scheduled -> read latency shows).
// Sleeping wakes about once a millisecond at most, and every event due by
// then goes out.
func offer(ctx context.Context, em *emitter.Emitter, g *loadgen.Generator, tr *trace) {
	total := len(tr.ids)
	for i := 0; i < total; {
		now := time.Now()
		for ; i < total && !tr.due(i).After(now); i++ {
			k := i
			em.EmitAsync(ctx, g.Next(), func(ev event.Event, err error) { tr.ack(k, ev, err, time.Now()) })
		}
		if i < total {
			time.Sleep(time.Until(tr.due(i)))
		}
	}
}

// latencies computes the row from the trace and the first reads.
func (t *trace) latencies(seen map[string]time.Time) (LatRow, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var fromAck, fromDue []float64
	var lastAck time.Time
	missing := 0
	for i, id := range t.ids {
		if t.ackAt[i].IsZero() {
			continue
		}
		at, ok := seen[id]
		if !ok {
			missing++
			continue
		}
		fromAck = append(fromAck, max(0, at.Sub(t.ackAt[i]).Seconds()*1000))
		fromDue = append(fromDue, at.Sub(t.due(i)).Seconds()*1000)
		if t.ackAt[i].After(lastAck) {
			lastAck = t.ackAt[i]
		}
	}
	if missing > 0 || len(fromAck) == 0 {
		return LatRow{}, fmt.Errorf("%d of %d acknowledged events were never read back", missing, missing+len(fromAck))
	}
	slices.Sort(fromAck)
	slices.Sort(fromDue)
	return LatRow{
		Achieved: float64(len(fromAck)) / lastAck.Sub(t.start).Seconds(), Events: len(fromAck),
		P50ms: pct(fromAck, 0.5), P99ms: pct(fromAck, 0.99), Maxms: fromAck[len(fromAck)-1],
		SchedP50ms: pct(fromDue, 0.5), SchedP99ms: pct(fromDue, 0.99), SchedMaxms: fromDue[len(fromDue)-1],
	}, nil
}

// pct is the p-quantile of the sorted v.
func pct(v []float64, p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }

// firstReads records when a read of the table first returned each id.
// Every 10 ms it lists the table's active parts and reads the ids of the
// parts it has not read yet (a merged part is a new name and is read once
// more; ids already seen keep their first time), so each read is a SELECT
// of the table, as the API's are, that touches only new rows.
type firstReads struct {
	seen map[string]time.Time
}

// run reads until done(len(seen)) or the deadline.
func (r *firstReads) run(ctx context.Context, e *env, db, table string, done func(int) bool, deadline time.Time) error {
	r.seen = map[string]time.Time{}
	read := map[string]bool{}
	for !done(len(r.seen)) {
		if time.Now().After(deadline) {
			return fmt.Errorf("reads returned %d events by the deadline", len(r.seen))
		}
		time.Sleep(10 * time.Millisecond)
		fresh, err := newParts(ctx, e, db, table, read)
		if err != nil || len(fresh) == 0 {
			continue
		}
		ids, err := e.partIDs(ctx, db+"."+table, fresh)
		if err != nil {
			continue
		}
		at := time.Now()
		for _, id := range ids {
			if _, ok := r.seen[id]; !ok {
				r.seen[id] = at
			}
		}
		for _, p := range fresh {
			read[p] = true
		}
	}
	return nil
}

// newParts lists the active parts of table not in read.
func newParts(ctx context.Context, e *env, db, table string, read map[string]bool) ([]string, error) {
	names, err := queryStrings(ctx, e.Conn, "SELECT name FROM system.parts WHERE active AND database = ? AND table = ?", db, table)
	return slices.DeleteFunc(names, func(n string) bool { return read[n] }), err
}

// partIDs reads the ids stored in the named parts of table (part names
// come from system.parts: letters, digits and underscores).
func (e *env) partIDs(ctx context.Context, table string, parts []string) ([]string, error) {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p) + "'"
	}
	return queryStrings(ctx, e.Conn, "SELECT id FROM "+table+" WHERE _part IN ("+strings.Join(quoted, ", ")+")")
}

// queryStrings runs a query returning one String column.
func queryStrings(ctx context.Context, conn driver.Conn, query string, args ...any) ([]string, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
