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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/config"
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
		d.Reg.MustRegister(f.firsts.Gauges("audittrail_forwarder", config.ForwarderDedupeMaxIDs.Name, f.now)...)
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
