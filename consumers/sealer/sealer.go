// Package sealer builds each workspace's integrity log: a Merkle tree
// (RFC 6962, golang.org/x/mod/sumdb/tlog) with one leaf per stored event,
// and signed checkpoints of it (see docs/integrity.md).
//
// The Sealer is its own consumer group on the events topic. It seals a
// record only once the writer group committed past it, reads what the
// writer did with it from the offsets record by its offset (records the
// offsets record lacks are read back from the events table by key
// (workspace_id, timestamp_ns, id)) and appends a leaf (schemas/leaf),
// computed from the record itself, for each stored event that has none
// yet, in partition order: one sealer owns a workspace's log at a time, as one
// consumer owns its partition. Records the writer did not store
// (dead-lettered, expired, a resend with another timestamp) get no leaf,
// and a resend of a sealed event gets no second one. The stored hashes are
// inserted before the leaves; a crash between the two is repaired on
// replay (see sequencer.seal), so every index is assigned once, without
// gaps. Offsets are committed after both inserts.
package sealer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Counts records and reads the events topic's partition counts
// (idwindow.History), for the handover after a partition increase.
type Counts interface {
	Observe(ctx context.Context, topic string, partitions int, now time.Time) ([]idwindow.Count, error)
}

// neverRelease is the handover's MaxHold: a hold ends only when the old
// partition is sealed.
const neverRelease = time.Duration(math.MaxInt64)

// idleLogs is how long a fully signed log no record touched stays in
// memory.
const idleLogs = 10 * time.Minute

// pollWait bounds one poll, so that checkpoints fall due and records
// waiting for the writer are rechecked while nothing arrives.
const pollWait = 250 * time.Millisecond

// Sealer consumes the events topic and appends to the workspaces' logs.
// Create it with New, run it with Run.
type Sealer struct {
	cfg    Config
	cl     *kgo.Client
	store  Store
	counts Counts
	log    *slog.Logger
	now    func() time.Time
	m      *metrics
	signer note.Signer
	gate   *handover.Gate
	off    *handover.KafkaOffsets

	// mu guards what the group callbacks change: the loop holds it from a
	// poll's end to AllowRebalance.
	mu       sync.Mutex
	seq      *sequencer
	pending  map[int32][]*kgo.Record // read, not yet sealed, in offset order
	paused   map[int32]bool
	wsPart   map[string]int32 // the partition each loaded log's records come from
	writerAt map[int32]int64  // the writer group's committed offsets, as last read
	ends     map[int32]int64  // the partitions' high watermarks, as last fetched
	sealed   time.Time        // when the last round was sealed (see yielding)
	yield    bool             // whether the sealer yields to a lagging writer
	checked  time.Time
	retryAt  time.Time // after a failed round, the next one waits until then
	swept    time.Time // when idle logs were last evicted
	// auditor picks the leaves of each audit pass, audited is when the
	// last pass ran (audit.go).
	auditor *sampler
	audited time.Time
	// checks runs the sample's and the audit's reads off the loop.
	checks *checker
}

// New builds a sealer and its Kafka client (kafkaOpts carry the brokers).
// counts may be nil: then nothing is handed over after a partition
// increase.
func New(cfg Config, kafkaOpts []kgo.Opt, store Store, counts Counts, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Sealer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signer, _ := cfg.signer()
	s := &Sealer{cfg: cfg, store: store, counts: counts, log: log, now: now, m: newMetrics(reg), signer: signer,
		auditor: newSampler(cfg.Audit), checks: newChecker(cfg.Sample, cfg.SampleEvery),
		off: &handover.KafkaOffsets{}, pending: map[int32][]*kgo.Record{}, paused: map[int32]bool{},
		wsPart: map[string]int32{}, writerAt: map[int32]int64{}, ends: map[int32]int64{},
		seq: &sequencer{store: store, now: now, trees: map[string]*tree{}, maxSeen: cfg.MaxSeen, lookback: cfg.Lookback,
			recent: 4 * cfg.BatchSize, anchor: &anchor{origin: cfg.Origin, verifiers: cfg.verifiers()}, sampler: newSampler(cfg.Sample),
			window: cfg.window()}}
	// A moved workspace waits until its old partition is stored by the
	// writer and sealed by the sealers, however long: two sealers
	// appending to one log would fork it (the append fence would stop
	// one, but only after the fact).
	s.gate = handover.New(handover.Config{Topic: cfg.Topic, Groups: []string{cfg.Group, cfg.WriterGroup}, MaxHold: neverRelease}, s.off, now)
	if reg != nil {
		reg.MustRegister(s.gate.Collectors("audittrail_sealer")...)
	}
	opts := append(slices.Clone(kafkaOpts),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout/10),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.cl = cl
	s.off.Bind(cl)
	return s, nil
}

// WithPublished makes the sealer also check each log it loads against the
// latest checkpoint published for it on the checkpoints topic (get, e.g.
// a kvtopic.Table's Get), which an attacker of ClickHouse cannot rewrite.
// Call it before Run.
func (s *Sealer) WithPublished(get func(ws string) ([]byte, bool)) *Sealer {
	s.seq.anchor.published = get
	return s
}

// Client returns the sealer's Kafka client (readiness checks, topics).
func (s *Sealer) Client() *kgo.Client { return s.cl }

// Run consumes until ctx is cancelled, then commits the offsets of what it
// sealed, leaves the group and returns. Records read but not sealed are
// read again by the next owner.
func (s *Sealer) Run(ctx context.Context) error {
	defer s.cl.Close()
	cctx, stopChecks := context.WithCancel(ctx)
	s.checks.start(cctx, func(ctx context.Context, sc SampleCheck) { s.report(sc.run(ctx, s.store)) })
	defer s.checks.wait()
	defer stopChecks()
	for ctx.Err() == nil {
		s.round(ctx)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cl.CommitMarkedOffsets(sctx); err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	if err := s.cl.Flush(sctx); err != nil {
		return fmt.Errorf("publish checkpoints: %w", err)
	}
	return nil
}

// round polls once, seals what the writer has committed, signs the
// checkpoints that are due and lets a waiting rebalance proceed.
func (s *Sealer) round(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, pollWait)
	fetches := s.cl.PollRecords(pctx, s.cfg.BatchSize)
	cancel()
	fetches.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			s.log.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
		}
	})
	res, err := s.gate.Pass(ctx, fetches.Records())
	if err != nil && ctx.Err() == nil {
		s.log.Warn("handover: offsets not read; holding", "err", err)
	}
	s.mu.Lock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Topic == s.cfg.Topic && p.Err == nil && p.HighWatermark > 0 {
			s.ends[p.Partition] = p.HighWatermark
		}
	})
	s.applyGate(res)
	for _, r := range res.Ready {
		s.pending[r.Partition] = append(s.pending[r.Partition], r)
	}
	s.m.waiting.Set(float64(s.waiting()))
	s.sealReady(ctx)
	s.noteTiles(ctx)
	s.checkpoints(ctx)
	s.auditLogs()
	if now := s.now(); now.Sub(s.swept) >= idleLogs/4 {
		s.seq.evictIdle(idleLogs)
		s.swept = now
	}
	s.syncPause()
	s.mu.Unlock()
	s.cl.AllowRebalance()
}

// applyGate pauses and resumes what the gate decided; a released moved
// workspace's log is loaded again from ClickHouse, where its old
// partition's sealer left it.
func (s *Sealer) applyGate(res handover.Result) {
	if len(res.Pause) > 0 {
		s.cl.PauseFetchPartitions(map[string][]int32{s.cfg.Topic: res.Pause})
	}
	for _, l := range res.Loads {
		for _, ws := range l.Workspaces {
			delete(s.seq.trees, ws)
		}
	}
	if len(res.TimedOut) > 0 {
		s.log.Warn("handover: partitions went on before their moved workspaces' old partitions were sealed",
			"partitions", res.TimedOut, "max_hold", handover.DefaultMaxHold)
	}
	if len(res.Resume) > 0 {
		s.cl.ResumeFetchPartitions(map[string][]int32{s.cfg.Topic: res.Resume})
	}
}

// decode returns a record's item: its event's key and the row the writer
// stores from it; false for a record the writer cannot have stored
// (undecodable, or keyed to another workspace than its event's).
func (s *Sealer) decode(r *kgo.Record) (Item, bool) {
	e, changes, err := event.DecodeStored(r.Value)
	if err != nil || e.ID == "" || string(r.Key) != e.WorkspaceID {
		return Item{}, false
	}
	key := Key{WorkspaceID: e.WorkspaceID, TimestampNs: e.Timestamp.UnixNano(), ID: e.ID}
	at := At{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	// As the writer validates (which fills the catalogue's category and
	// resource type) before it stores. An event this sealer's validation
	// refuses (a catalogue older than the writer's) is still sealed if it
	// is stored, without the comparison.
	if err := (event.Policy{AllowCustomEvents: true, Now: s.now}).Validate(&e); err != nil {
		return Item{Key: key, At: at}, true
	}
	row := migrations.RowWithChanges(&e, changes)
	return Item{Key: key, At: at, Record: &row}, true
}
