package forward

// Per-target delivery queues and the scheduler. Each workspace has a queue
// per target kind with at most one request in flight; queues ready to be
// served wait in a FIFO from which the workers take them, make one attempt
// and reschedule them.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/backoff"
)

// item is one delivery of one record to one target.
type item struct {
	e      *entry
	rec    *kgo.Record
	readAt time.Time
	id     string // the event id once processed
	ts     int64  // the event's timestamp_ns once processed
	call   []byte // encoded track call once processed
	done   bool   // processed and ready to send
}

// target is one workspace's queue for one target kind. Only the worker
// that popped it from the scheduler touches the head of items; add only
// appends.
type target struct {
	kind, ws string
	mu       sync.Mutex
	items    []*item
	busy     bool // scheduled, being served or waiting for a retry
	attempts int  // failed attempts of the head batch
	timer    *time.Timer
	// wakeable: waiting for a retry that a settings change of the
	// workspace starts at once (delivery paused, settings compiling).
	wakeable bool
	// changes counts the workspace's settings changes (settingsChanged),
	// so that one made during an attempt is not missed.
	changes uint64

	split       // isolating the events a target rejected (source targets)
	paused bool // the target refused the request whatever its content
	pauses int  // refused attempts since the pause began
	// holding is the partition whose fetching t's full queue paused.
	holding *partition
}

func (f *Forwarder) enqueue(kind, ws string, it *item) {
	key := kind + "\x00" + ws
	f.tmu.Lock()
	t := f.targets[key]
	if t == nil {
		t = &target{kind: kind, ws: ws}
		f.targets[key] = t
	}
	f.tmu.Unlock()
	it.e.p.mu.Lock()
	it.e.pending++
	it.e.p.mu.Unlock()
	t.mu.Lock()
	t.items = append(t.items, it)
	schedule := !t.busy
	t.busy = true
	held := f.holdIfFull(t, it.e.p)
	t.mu.Unlock()
	if held {
		f.log.Info("a workspace's queue is full; it holds its partition", "workspace_id", ws, "partition", it.e.p.id, "queued", f.queueCap())
		f.syncFetch(it.e.p)
	}
	if schedule {
		f.sched.push(t)
	}
}

func (f *Forwarder) stopTimers() {
	f.tmu.Lock()
	defer f.tmu.Unlock()
	for _, t := range f.targets {
		t.mu.Lock()
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
	}
}

// scheduler is the FIFO of targets ready to be served; a target is in it
// at most once.
type scheduler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ready  []*target
	closed bool
}

func (s *scheduler) init() { s.cond = sync.NewCond(&s.mu) }

func (s *scheduler) push(t *target) {
	s.mu.Lock()
	if !s.closed {
		s.ready = append(s.ready, t)
		s.cond.Signal()
	}
	s.mu.Unlock()
}

func (s *scheduler) pop() *target {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready) == 0 && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		return nil
	}
	t := s.ready[0]
	s.ready[0] = nil
	s.ready = s.ready[1:]
	return t
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (f *Forwarder) work(ctx context.Context) {
	for {
		t := f.sched.pop()
		if t == nil {
			return
		}
		f.serve(ctx, t)
	}
}

// serve makes one delivery attempt for the head of t's queue and then
// reschedules t: at once when more is queued, after a backoff when the
// attempt failed and may be retried, or not at all when t is empty.
func (f *Forwarder) serve(ctx context.Context, t *target) {
	t.mu.Lock()
	n := min(len(t.items), f.cfg.BatchEvents)
	if len(t.segs) > 0 {
		n = min(n, t.segs[0])
	}
	head := t.items[:n]
	head = append([]*item(nil), head...)
	if len(head) == 0 {
		t.busy = false
		t.mu.Unlock()
		return
	}
	t.wakeable = false
	changes := t.changes
	t.mu.Unlock()

	var retryIn time.Duration
	switch t.kind {
	case TargetSource:
		retryIn = f.serveSource(ctx, t, head)
	case TargetAlert:
		retryIn = f.serveAlert(ctx, t, head[0])
	}
	f.releaseIfDrained(t)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case retryIn > 0 && ctx.Err() == nil && t.wakeable && t.changes != changes:
		// The settings changed during the attempt, before its retry
		// could be woken: retry at once with them.
		t.wakeable, t.pauses = false, 0
		f.sched.push(t)
	case retryIn > 0 && ctx.Err() == nil:
		t.timer = time.AfterFunc(retryIn, func() { f.sched.push(t) })
	case len(t.items) > 0 && ctx.Err() == nil:
		f.sched.push(t)
	default:
		t.busy = false
	}
}

// take removes the first n items of t's queue (and of its split's head
// segment, if any).
func (t *target) take(n int) {
	t.mu.Lock()
	clear(t.items[:n])
	t.items = t.items[n:]
	if len(t.items) == 0 {
		t.items = nil
	}
	t.mu.Unlock()
	t.consumed(n)
}

// settle decides what a failed attempt means for the head batch: a retry
// after a backoff (returned), or dead letters when the failure is final or
// the attempts are exhausted (returns 0; the caller then finishes the batch).
func (f *Forwarder) settle(t *target, err error) (time.Duration, string) {
	var de *DeliveryError
	if !errors.As(err, &de) {
		de = &DeliveryError{Retryable: true, Err: err}
	}
	t.attempts++
	if !de.Retryable {
		f.m.attempts.WithLabelValues(t.kind, "rejected").Inc()
		f.m.ws.failedFor(t.ws, t.kind, "rejected")
		return 0, de.Reason() + ": " + de.Error()
	}
	f.m.attempts.WithLabelValues(t.kind, "retry").Inc()
	f.m.ws.failedFor(t.ws, t.kind, "retry")
	if t.attempts >= f.cfg.MaxAttempts {
		return 0, de.Reason() + ": " + de.Error()
	}
	if de.RetryAfter > 0 {
		return min(de.RetryAfter, f.cfg.RetryAfterMax), ""
	}
	return f.backoff(t.attempts), ""
}

// backoff is the wait before delivery retry n (from 1): RetryMin doubled
// n-1 times, at most RetryMax, with jitter (between half and the whole of
// it).
func (f *Forwarder) backoff(n int) time.Duration {
	return deliveryBackoff(f.cfg).Wait(n)
}

// deliveryBackoff is the backoff between delivery attempts, jittered so
// that targets failing together are not retried together.
func deliveryBackoff(cfg Config) backoff.Policy {
	return backoff.Policy{Min: cfg.RetryMin, Max: cfg.RetryMax, Jitter: true}
}

// retries is the backoff of the forwarder's own retries (registry reads,
// dead letters): RetryMin doubled after each failure, at most RetryMax.
func (f *Forwarder) retries() backoff.Policy {
	return backoff.Policy{Min: f.cfg.RetryMin, Max: f.cfg.RetryMax}
}
