// Package writer is the consumer group that stores audit events in
// ClickHouse. It reads the events topic, batches rows by size and age, writes
// each batch with one native insert, and commits Kafka offsets only after
// ClickHouse acknowledged the rows. Replays after a crash or rebalance insert
// rows identical to ones already stored, which the table (ReplacingMergeTree
// on workspace, time and id) and the read path collapse, so no event is lost
// and none is shown twice.
//
// Records that cannot be stored (undecodable, failing validation, too far in
// the future) go to the dead-letter topic with headers naming the reason and
// the source topic, partition and offset. Events already older than the
// retention window on arrival are counted and skipped, unless their
// workspace's policy keeps them (KeepBy: a longer window or a legal hold).
package writer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Sink stores rows and the id registry. On error the writer retries the
// same call.
type Sink interface {
	// Insert stores rows; all or nothing from the writer's point of view.
	Insert(ctx context.Context, rows []migrations.Row) error
	// Register records stored events' ids; Recent returns those stored
	// from one partition since a time, oldest first: the newest max of
	// them (or a few more, stored in the same second).
	Register(ctx context.Context, ids []idwindow.StoredID) error
	Recent(ctx context.Context, topic string, partition int32, since time.Time, max int) ([]idwindow.StoredID, error)
	// Moved returns the ids stored from other partitions by workspaces the
	// producers now key to one of assigned (see idwindow.Registry.Moved);
	// MovedFrom those stored from one partition by some workspaces.
	Moved(ctx context.Context, topic string, partitions int, assigned []int32, since time.Time, max int) ([]idwindow.StoredID, error)
	MovedFrom(ctx context.Context, topic string, partition int32, workspaces []string, since time.Time, max int) ([]idwindow.StoredID, error)
	// PartitionCounts records the topic's partition count and returns the
	// counts recorded, oldest first (see idwindow.History).
	PartitionCounts(ctx context.Context, topic string, partitions int, now time.Time) ([]idwindow.Count, error)
	// RecordOffsets records what the writer did with each record of a
	// batch (Config.RecordOffsets): a replay may record an offset again.
	RecordOffsets(ctx context.Context, offsets []migrations.StoredOffset) error
}

// Writer consumes the events topic into a Sink. Create it with New, run it
// with Run.
type Writer struct {
	cfg  Config
	cl   *kgo.Client
	sink Sink
	log  *slog.Logger
	now  func() time.Time
	m    *metrics

	// inserts carries full batches to the inserter goroutine (one queued
	// while InsertStreams insert), so decoding the next batch overlaps the
	// inserts. registers carries the batches being stored, in order, to the
	// registrar, which waits for each insert, records the batch's ids in
	// the registry and then marks its records, so the next insert does not
	// wait for the registry.
	inserts   chan *batch
	registers chan *batch
	spare     chan batch       // emptied buffers of finished batches (see recycle)
	claims    []idwindow.Claim // fresh's buffer (only the inserter goroutine calls fresh)
	next      []int            // fresh's buffer of where each partition's next id goes

	mu    sync.Mutex
	rows  []migrations.Row
	parts []int32 // the partition of each buffered row
	offs  []int64 // the offset of each buffered row's record (Config.RecordOffsets)
	// skipped are the buffered records that made no row (dead-lettered,
	// expired), recorded with their outcome (Config.RecordOffsets).
	skipped  []migrations.StoredOffset
	keys     []idwindow.Key // the window key of each buffered row
	pending  []*kgo.Record  // every record the buffered rows came from, incl. skipped ones
	bytes    int            // the keys' and values' bytes of pending
	oldest   time.Time
	inflight []*batch            // handed to the inserter, oldest first
	idBuf    []idwindow.StoredID // the next batch's buffer for its ids
	policy   event.Policy
	policies Policies // nil: the deployment's window for every workspace (KeepBy)
	// policyWarned is when (Unix seconds) unreadable policies were last
	// logged.
	policyWarned atomic.Int64

	ids *idwindow.Window // nil when the idempotency window is off
	// gate holds moved workspaces' records after a partition-count
	// increase until their old partition is stored (nil without ids).
	gate *handover.Gate
}

// New builds a writer and its Kafka client. kafkaOpts carry the brokers
// (kafkaconn.Config.Options); reg receives the writer's metrics.
func New(cfg Config, kafkaOpts []kgo.Opt, sink Sink, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	w := &Writer{cfg: cfg, sink: sink, log: log, now: now, m: newMetrics(reg),
		// The gateway decides which names are acceptable; the writer stores
		// whatever passed it, custom names included.
		policy: event.Policy{AllowCustomEvents: true, Now: now},
	}
	w.newBuffers()
	if cfg.DedupeWindow > 0 {
		w.ids = idwindow.New(cfg.DedupeWindow, cfg.DedupeMaxIDs)
		if reg != nil {
			reg.MustRegister(w.ids.Gauges("audittrail_writer", config.WriterDedupeMaxIDs.Name, now)...)
		}
	}
	// The gate exists before the client, whose group callbacks use it.
	offsets := &handover.KafkaOffsets{}
	if w.ids != nil {
		w.gate = handover.New(handover.Config{Topic: cfg.Topic, Groups: []string{cfg.Group}}, offsets, now)
		if reg != nil {
			reg.MustRegister(w.gate.Collectors("audittrail_writer")...)
		}
	}
	opts := append([]kgo.Opt{}, kafkaOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// Offsets are marked once ClickHouse acknowledged their rows; marks
		// are committed in the background, on revoke and at shutdown.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(w.onAssigned),
		kgo.OnPartitionsRevoked(w.onRevoked),
		kgo.OnPartitionsLost(w.onLost),
		kgo.FetchMaxWait(cfg.BatchAge),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout/10),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	w.cl = cl
	offsets.Bind(cl)
	return w, nil
}

// Client returns the writer's Kafka client (for readiness checks).
func (w *Writer) Client() *kgo.Client { return w.cl }

// Run consumes until ctx is cancelled, then flushes what is buffered,
// commits, leaves the group and returns. It returns nil after a clean
// shutdown; an error only when the final flush could not complete within
// the shutdown timeout (those records are replayed on the next start).
//
// A poller goroutine hands each poll's records to Run and waits until they
// are buffered (and, when the buffer is full, inserted) before it allows a
// rebalance and polls again: a full buffer pauses fetching, and partitions
// never move while their records are half-processed. Run itself also
// flushes by age while the poller waits for records. The stages are in
// pipeline.go.
func (w *Writer) Run(ctx context.Context) error {
	// Inserts outlive ctx until the shutdown deadline, so the final flush
	// can finish what is in flight.
	insertCtx, cancelInserts := context.WithCancel(context.WithoutCancel(ctx))
	w.inserts = make(chan *batch, 1)
	// Up to InsertStreams batches are stored at once; the registrar takes
	// them in batch order, so offsets are still marked in order.
	w.registers = make(chan *batch, w.cfg.InsertStreams)
	w.spare = make(chan batch, w.cfg.InsertStreams+2)
	var stages sync.WaitGroup
	stages.Go(func() { w.insertLoop(insertCtx, &stages) })
	stages.Go(func() { w.registerLoop(insertCtx) })
	// Deferred in this order: the client closes first (leaving the group,
	// with nothing left to flush), then the inserter and registrar stop.
	defer func() { cancelInserts(); stages.Wait() }()
	defer w.cl.Close()

	h := handoff{polled: make(chan polledRecords), processed: make(chan struct{}), done: make(chan struct{})}
	go w.poll(ctx, h)
	if err := w.consume(ctx, h); err != nil {
		return err
	}
	<-h.done

	// Shutdown: input stopped; flush, wait for the inserts, commit, close.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
	defer cancel()
	if err := w.drain(sctx); err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	if err := w.cl.CommitMarkedOffsets(sctx); err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	return nil
}
