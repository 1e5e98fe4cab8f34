// Package forward is the audit forwarding consumer group. It reads the
// events topic in its own group and, for every workspace with forwarding
// enabled, runs each event through the workspace's hard-failure rule,
// tracking plan and destination filters and delivers it to the workspace's
// event-streams source over the HTTP tracking API (POST {url}/v1/batch); it
// also posts chat alerts for the event names a workspace chose. Settings
// come from the compacted settings topic, read from the beginning at start
// and tailed, so changes reach every instance within about a second.
//
// Delivery is at least once with a stable messageId (the audit event id).
// Each workspace target has its own queue with at most one request in
// flight, which keeps the workspace's order; a failing or slow target only
// holds its own queue, so other workspaces of the same partition keep
// flowing. Offsets are committed per partition only up to the lowest
// record not yet delivered, dropped by configuration or dead-lettered
// (a low watermark), so a crash or restart replays, never skips. Timeouts,
// transport errors, 429 (honouring Retry-After) and 5xx are retried with
// capped exponential backoff and jitter. A batch refused with another 4xx
// is split to isolate the refused events (source.go); those, events over
// 32 KB and exhausted retries go to the forwarding dead-letter topic with
// reason headers, from which the replay command re-delivers them. A target
// refusing the write key (401, 403) or address (404, 410) pauses its
// workspace's delivery, with an alert, and dead-letters nothing. A
// workspace whose queue is full pauses reading of its partition only
// (backpressure.go). Tracking plans and filters are compiled off the
// delivery path, per workspace (Workspaces).
//
// An event id is an idempotency key: the forwarder delivers the version of
// an id the API shows, the first one stored. When it is assigned a
// partition it loads the ids the writer registered for it (audit_event_ids,
// for the retention window and a day) with their timestamps; events it
// finishes later join them. An event whose id is known with another
// timestamp is a resend and is not delivered; one with the same timestamp
// is that first version (or a replay of it) and is.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Emitter records audit events (an emitter.Emitter in production).
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) error
}

// Registry reads the writer's id registry (an *idwindow.Registry in
// production).
type Registry interface {
	// Recent returns the ids stored from one partition since a time, at
	// least the newest max of them, oldest first.
	Recent(ctx context.Context, topic string, partition int32, since time.Time, max int) ([]idwindow.StoredID, error)
	// Moved returns the ids stored from other partitions by workspaces the
	// producers now key to one of assigned (moved there by a
	// partition-count increase), at most max per old partition; MovedFrom
	// those stored from one partition by some workspaces.
	Moved(ctx context.Context, topic string, partitions int, assigned []int32, since time.Time, max int) ([]idwindow.StoredID, error)
	MovedFrom(ctx context.Context, topic string, partition int32, workspaces []string, since time.Time, max int) ([]idwindow.StoredID, error)
	// PartitionCounts records the topic's partition count and returns the
	// counts recorded, oldest first (see idwindow.History).
	PartitionCounts(ctx context.Context, topic string, partitions int, now time.Time) ([]idwindow.Count, error)
}

// Deps are the forwarder's collaborators.
type Deps struct {
	// KafkaOpts carry the brokers (kafkaconn.Config.Options).
	KafkaOpts []kgo.Opt
	// Registry, when set, is loaded from when partitions are assigned, so
	// that resends of ids stored before (by the writer) are not delivered.
	Registry Registry
	// Emitter records "Violations Detected" events; nil disables that.
	Emitter Emitter
	Log     *slog.Logger
	Reg     prometheus.Registerer
	Now     func() time.Time
	// OnDelivered, when set, is called with the read-to-acknowledged
	// latency of every delivered event (benchmarks).
	OnDelivered func(d time.Duration)
}

// Target kinds (dead-letter header values).
const (
	TargetSource = "source"
	TargetAlert  = "alert"
)

// Forwarder is one member of the forwarder group. Create it with New, run
// it with Run; it is not reusable after Run returns.
type Forwarder struct {
	cfg    Config
	deps   Deps
	cl     *kgo.Client
	pauser fetchPauser // cl; pauses fetching of held partitions
	table  *kvtopic.Table
	ws     *Workspaces
	sender *Sender
	m      *metrics
	viol   *violations
	log    *slog.Logger
	now    func() time.Time

	slots chan struct{} // one per record in flight

	pmu   sync.Mutex
	parts map[int32]*partition

	tmu     sync.Mutex
	targets map[string]*target

	sched scheduler

	recent *recentIDs // ids delivered lately: a resent id is not delivered again
	// firsts maps ids, loaded from the registry or finished here, to the
	// timestamp of their first version: another version is not delivered.
	firsts *idwindow.Window
	// gate holds moved workspaces' records after a partition-count
	// increase until their old partition is forwarded and stored (nil
	// without a Registry).
	gate *handover.Gate
}

// recentWindow is how many event ids per generation the forwarder
// remembers to suppress resends (two generations: up to twice this).
const recentWindow = 100_000

// New builds a forwarder, its Kafka client and its settings table.
func New(cfg Config, d Deps) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		cfg: cfg, deps: d, log: d.Log, now: d.Now, m: newMetrics(d.Reg),
		ws:      NewWorkspaces(d.Log),
		sender:  NewSender(cfg.RequestTimeout, cfg.Workers, cfg.Egress.Policy(), d.Now),
		slots:   make(chan struct{}, cfg.MaxInFlight),
		parts:   map[int32]*partition{},
		targets: map[string]*target{},
		recent:  newRecentIDs(recentWindow),
		firsts:  idwindow.New(idwindow.RegistrySpan(cfg.RetentionDays), cfg.DedupeMaxIDs),
	}
	if d.Reg != nil {
		d.Reg.MustRegister(f.firsts.Gauges("audittrail_forwarder", "AUDITTRAIL_FORWARDER_DEDUPE_MAX_IDS", f.now)...)
	}
	f.ws.onChange = f.settingsChanged
	f.viol = newViolations(d.Emitter, d.Log, d.Now)
	f.sched.init()
	table, err := kvtopic.New(d.KafkaOpts, cfg.SettingsTopic, f.ws.Apply)
	if err != nil {
		return nil, err
	}
	f.table = table
	opts := append([]kgo.Opt{}, d.KafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(f.onAssigned),
		kgo.OnPartitionsRevoked(f.onRevoked),
		kgo.OnPartitionsLost(f.onLost),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	f.cl, f.pauser = cl, cl
	if d.Registry != nil {
		f.gate = handover.New(handover.Config{Topic: cfg.Topic, Groups: []string{cfg.Group, cfg.WriterGroup}}, handover.NewKafkaOffsets(cl), f.now)
		if d.Reg != nil {
			d.Reg.MustRegister(f.gate.Collectors("audittrail_forwarder")...)
		}
	}
	return f, nil
}

// Client returns the forwarder's group client (readiness checks).
func (f *Forwarder) Client() *kgo.Client { return f.cl }

// Workspaces returns the live settings snapshots.
func (f *Forwarder) Workspaces() *Workspaces { return f.ws }

// Run loads the settings, then consumes until ctx ends. At shutdown it
// stops reading, lets in-flight deliveries finish for up to the shutdown
// timeout, commits what was delivered or dead-lettered, records pending
// violations and leaves the group. Undelivered records are read again by
// the next owner of their partition.
func (f *Forwarder) Run(ctx context.Context) error {
	defer f.cl.Close()
	tctx, tcancel := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer f.ws.Close()
	defer bg.Wait()
	defer tcancel()
	bg.Go(func() {
		if err := f.table.Run(tctx); err != nil {
			f.log.Error("settings table stopped", "err", err)
		}
	})
	// No record is read before every workspace's settings are known: an
	// event of an enabled workspace must never pass as "disabled".
	if err := f.table.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	dctx, dcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer dcancel()
	var workers sync.WaitGroup
	for range f.cfg.Workers {
		workers.Go(func() { f.work(dctx) })
	}
	bg.Go(func() { f.viol.run(dctx, f.cfg.ViolationInterval) })

	for ctx.Err() == nil {
		fetches, recs := f.poll(ctx)
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				f.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
			}
		})
		for _, r := range recs {
			if ctx.Err() != nil {
				break
			}
			f.add(ctx, r)
		}
		f.cl.AllowRebalance()
	}

	// Shutdown: input stopped; drain, commit, close.
	deadline := time.NewTimer(f.cfg.ShutdownTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
drain:
	for len(f.slots) > 0 {
		select {
		case <-deadline.C:
			f.log.Warn("shutdown timeout: undelivered records will be read again", "in_flight", len(f.slots))
			break drain
		case <-tick.C:
		}
	}
	deadline.Stop()
	tick.Stop()
	f.sched.close()
	dcancel()
	workers.Wait()
	f.stopTimers()
	f.sender.client.CloseIdleConnections()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	f.viol.flush(sctx)
	if err := f.cl.CommitMarkedOffsets(sctx); err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	return nil
}

// partition tracks the records of one assigned partition in offset order.
type partition struct {
	id      int32
	mu      sync.Mutex
	entries []*entry
	revoked atomic.Bool
	holds   int // targets whose full queue holds this partition
	// fetchPaused is what syncFetch last asked of the client; fetchTurn
	// (capacity one) is taken while it asks (backpressure.go): a channel,
	// so that waiting for the turn is durably blocking under synctest.
	fetchPaused bool
	fetchTurn   chan struct{}
}

// entry is one record: pending counts its deliveries not yet finished
// (plus one while it is being dispatched).
type entry struct {
	p       *partition
	offset  int64
	epoch   int32
	pending int32
}

func (f *Forwarder) partition(id int32) *partition {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	p := f.parts[id]
	if p == nil {
		p = &partition{id: id, fetchTurn: make(chan struct{}, 1)}
		f.parts[id] = p
	}
	return p
}

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

// add dispatches one record: it takes an in-flight slot (waiting when all
// are taken) and queues a delivery per target that wants the event.
func (f *Forwarder) add(ctx context.Context, r *kgo.Record) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	f.m.read.Inc()
	f.m.inFlight.Inc()
	p := f.partition(r.Partition)
	e := &entry{p: p, offset: r.Offset, epoch: r.LeaderEpoch, pending: 1}
	p.mu.Lock()
	p.entries = append(p.entries, e)
	p.mu.Unlock()

	wsID := string(r.Key)
	if ws := f.ws.Get(wsID); ws != nil {
		name := header(r, topics.HeaderEvent)
		now := f.now()
		if ws.Forwarding.Enabled {
			f.enqueue(TargetSource, wsID, &item{e: e, rec: r, readAt: now})
		}
		if ws.Alerts.Triggers(name) {
			f.enqueue(TargetAlert, wsID, &item{e: e, rec: r, readAt: now})
		}
	}
	f.finish(e)
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// finish ends one delivery of e. When e has none left, the partition's low
// watermark advances past every leading finished record and is marked for
// commit (unless the partition was revoked meanwhile).
func (f *Forwarder) finish(e *entry) {
	p := e.p
	p.mu.Lock()
	e.pending--
	if e.pending > 0 {
		p.mu.Unlock()
		return
	}
	var last *entry
	n := 0
	for n < len(p.entries) && p.entries[n].pending == 0 {
		last = p.entries[n]
		p.entries[n] = nil
		n++
	}
	if n > 0 {
		p.entries = p.entries[n:]
	}
	if last != nil && !p.revoked.Load() {
		f.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
			f.cfg.Topic: {p.id: {Epoch: last.epoch, Offset: last.offset + 1}},
		})
	}
	p.mu.Unlock()
	<-f.slots
	f.m.inFlight.Dec()
}

// onAssigned loads the ids the writer registered for the assigned
// partitions within the window into firsts, before any of their records is
// read, and those it registered from other partitions for workspaces now
// keyed to the assigned ones (moved by a partition-count increase). The
// newest ids of each partition are loaded, an equal share of DedupeMaxIDs
// per partition. Loading is bounded by RegistryTimeout; a partition whose
// ids could not be loaded (ClickHouse down) is forwarded with what is
// remembered, with a warning and a count of the failure.
func (f *Forwarder) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	ps := assigned[f.cfg.Topic]
	if f.deps.Registry == nil || len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.RegistryTimeout)
	defer cancel()
	share := max(f.cfg.DedupeMaxIDs/len(ps), 1)
	since := func() time.Time { return f.now().Add(-idwindow.RegistrySpan(f.cfg.RetentionDays)) }
	loaded := 0
	for _, p := range ps {
		now := f.now()
		ids, err := f.loadRegistered(ctx, p, func() ([]idwindow.StoredID, error) {
			return f.deps.Registry.Recent(ctx, f.cfg.Topic, p, since(), share)
		})
		if err != nil {
			f.m.registryErrors.Inc()
			f.log.Warn("registered ids not loaded; resends of ids stored before may be forwarded", "partition", p, "err", err)
			continue
		}
		f.firsts.Add(now, ids)
		loaded += len(ids)
	}
	now := f.now()
	ids, err := f.loadRegistered(ctx, -1, func() ([]idwindow.StoredID, error) {
		n, err := idwindow.PartitionCount(ctx, cl, f.cfg.Topic)
		if err != nil {
			return nil, err
		}
		return f.deps.Registry.Moved(ctx, f.cfg.Topic, n, ps, since(), share)
	})
	if err != nil {
		f.m.registryErrors.Inc()
		f.log.Warn("moved workspaces' registered ids not loaded; resends of ids they stored on other partitions may be forwarded", "err", err)
	} else {
		f.firsts.Add(now, ids)
		loaded += len(ids)
	}
	f.log.Info("registered ids loaded", "partitions", len(ps), "ids", loaded, "moved", len(ids), "remembered", f.firsts.Size())
	f.assignGate(ctx, cl, ps)
}

// loadRegistered reads registered ids (of partition p, or -1: of moved
// workspaces), retrying with backoff until it succeeds or ctx ends.
func (f *Forwarder) loadRegistered(ctx context.Context, p int32, read func() ([]idwindow.StoredID, error)) ([]idwindow.StoredID, error) {
	backoff := f.cfg.RetryMin
	for {
		ids, err := read()
		if err == nil {
			return ids, nil
		}
		f.log.Debug("loading registered ids failed; will retry", "partition", p, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("load registered ids: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.cfg.RetryMax)
	}
}

// resent reports whether an event of workspace ws is a resend not to
// deliver to a target kind: its id was delivered or dead-lettered to that
// kind lately (whatever the timestamp), or its id's first version, loaded
// from the registry or finished here, has another timestamp (the first
// version stays, as in the API). An id known with the same timestamp is
// that first version or a replay of it: delivered (the messageId is
// stable).
func (f *Forwarder) resent(kind, ws, id string, ts int64) bool {
	if f.recent.seen(kind, ws, id) {
		return true
	}
	first, ok := f.firsts.Lookup(idwindow.KeyOf(ws, id))
	return ok && first != ts
}

// remember records events finished for good (delivered, dead-lettered or
// dropped by the workspace's rules) as the first versions of their ids.
func (f *Forwarder) remember(ws string, its ...*item) {
	now := f.now()
	ids := make([]idwindow.StoredID, 0, len(its))
	for _, it := range its {
		if it.id != "" {
			ids = append(ids, idwindow.StoredID{WorkspaceID: ws, ID: it.id, TimestampNs: it.ts, StoredAt: now})
		}
	}
	f.firsts.Add(now, ids)
}

// onRevoked stops marking the revoked partitions (their queued deliveries
// are skipped) and commits what was marked before they move.
func (f *Forwarder) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	f.forget(revoked)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		f.log.Warn("commit on revoke failed; records will be forwarded again", "err", err)
	}
}

// onLost forgets the partitions without committing.
func (f *Forwarder) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	f.forget(lost)
}

func (f *Forwarder) forget(m map[string][]int32) {
	if f.gate != nil {
		f.gate.Revoke(m[f.cfg.Topic]) // revoked partitions resume in syncFetch
	}
	f.pmu.Lock()
	var gone []*partition
	for _, id := range m[f.cfg.Topic] {
		if p := f.parts[id]; p != nil {
			p.mu.Lock() // no mark of p after this
			p.revoked.Store(true)
			p.mu.Unlock()
			gone = append(gone, p)
			delete(f.parts, id)
		}
	}
	f.pmu.Unlock()
	for _, p := range gone {
		f.syncFetch(p)
	}
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

// take removes the first n items of t's queue.
func (t *target) take(n int) {
	t.mu.Lock()
	clear(t.items[:n])
	t.items = t.items[n:]
	if len(t.items) == 0 {
		t.items = nil
	}
	t.mu.Unlock()
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
		return 0, de.Reason() + ": " + de.Error()
	}
	f.m.attempts.WithLabelValues(t.kind, "retry").Inc()
	if t.attempts >= f.cfg.MaxAttempts {
		return 0, de.Reason() + ": " + de.Error()
	}
	if de.RetryAfter > 0 {
		return min(de.RetryAfter, f.cfg.RetryAfterMax), ""
	}
	d := f.cfg.RetryMin << min(t.attempts-1, 30)
	if d <= 0 || d > f.cfg.RetryMax {
		d = f.cfg.RetryMax
	}
	// Jitter: between half and the whole backoff.
	return d/2 + rand.N(d/2+1), ""
}

// process runs one item through the workspace's pipeline, leaving it.call
// nil when the event is dropped or dead-lettered.
func (f *Forwarder) process(ctx context.Context, ws *Workspace, it *item) {
	it.done = true
	ev, err := event.Decode(it.rec.Value)
	if err != nil {
		// Poison is the writer's to dead-letter; nothing to forward.
		f.m.dropped.WithLabelValues("undecodable").Inc()
		return
	}
	it.id, it.ts = ev.ID, ev.Timestamp.UnixNano()
	if f.resent(TargetSource, ws.ID, it.id, it.ts) {
		f.m.dropped.WithLabelValues(dropDuplicate).Inc()
		return
	}
	out, err := Process(ws, &ev)
	if out.FilterErrors > 0 {
		f.m.filterErrs.Add(float64(out.FilterErrors))
	}
	if len(out.Violations) > 0 {
		f.m.violations.Inc()
		f.viol.add(ws.ID, ev.Event, ev.ID, out.Violations)
	}
	if err != nil {
		f.deadLetter(ctx, TargetSource, it, "too_large: "+err.Error(), 0)
		f.recent.add(TargetSource, ws.ID, ev.ID)
		f.remember(ws.ID, it)
		return
	}
	if out.Dropped != "" {
		// Dropped by the workspace's rules: this version is the one the
		// API shows, so another version of the id is not delivered either.
		f.m.dropped.WithLabelValues(out.Dropped).Inc()
		f.remember(ws.ID, it)
		return
	}
	it.call = out.Call
}

func (f *Forwarder) serveAlert(ctx context.Context, t *target, it *item) time.Duration {
	ws := f.ws.Get(t.ws)
	name := header(it.rec, topics.HeaderEvent)
	skip := it.e.p.revoked.Load() || ws == nil || !ws.Alerts.Triggers(name)
	var text string
	var ev event.Event
	if !skip {
		var err error
		ev, err = event.Decode(it.rec.Value)
		switch {
		case err != nil:
			skip = true
		case f.resent(TargetAlert, ws.ID, ev.ID, ev.Timestamp.UnixNano()):
			// Already alerted, or another version of an id already
			// stored or finished (a resend of the event).
			f.m.dropped.WithLabelValues(dropDuplicate).Inc()
			skip = true
		default:
			skip = skipsSoftFailure(ws, &ev)
			text = AlertText(&ev)
		}
	}
	if skip {
		t.take(1)
		t.attempts = 0
		f.finish(it.e)
		return 0
	}
	err := f.sender.SendAlert(ctx, ws.Alerts.WebhookURL, text)
	if err == nil {
		f.m.attempts.WithLabelValues(t.kind, "ok").Inc()
		f.m.alerts.Inc()
		f.recent.add(TargetAlert, ws.ID, ev.ID)
		f.remember(ws.ID, &item{id: ev.ID, ts: ev.Timestamp.UnixNano()})
		t.attempts = 0
		t.take(1)
		f.finish(it.e)
		return 0
	}
	if ctx.Err() != nil {
		return 0
	}
	retryIn, reason := f.settle(t, err)
	if retryIn > 0 {
		return retryIn
	}
	attempts := t.attempts
	t.attempts = 0
	t.take(1)
	f.deadLetter(ctx, TargetAlert, it, reason, attempts)
	f.recent.add(TargetAlert, ws.ID, ev.ID)
	f.remember(ws.ID, &item{id: ev.ID, ts: ev.Timestamp.UnixNano()})
	f.finish(it.e)
	return 0
}

// deadLetter publishes the item's original record to the forwarding
// dead-letter topic and waits for the acknowledgement, retrying until it
// succeeds or ctx ends (then the record is not marked and is read again).
func (f *Forwarder) deadLetter(ctx context.Context, kind string, it *item, reason string, attempts int) {
	r := it.rec
	dl := &kgo.Record{
		Topic: f.cfg.DeadLetterTopic,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader{}, r.Headers...),
			kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: []byte(truncate(reason, 1024))},
			kgo.RecordHeader{Key: topics.HeaderForwardTarget, Value: []byte(kind)},
			kgo.RecordHeader{Key: topics.HeaderDLQAttempts, Value: []byte(strconv.Itoa(attempts))},
			kgo.RecordHeader{Key: topics.HeaderDLQTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: topics.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: topics.HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		),
	}
	backoff := f.cfg.RetryMin
	for {
		err := f.cl.ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			label, _, _ := cut(reason, ':')
			f.m.deadLetters.WithLabelValues(kind, label).Inc()
			return
		}
		if ctx.Err() != nil {
			// Not parked: keep the record unmarked by holding its entry.
			it.e.p.mu.Lock()
			it.e.pending++
			it.e.p.mu.Unlock()
			return
		}
		f.log.Error("dead-letter publish failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.cfg.RetryMax)
	}
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
