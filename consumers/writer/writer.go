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
// retention window on arrival are counted and skipped.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
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
	// producers now key to one of assigned (see idwindow.Registry.Moved).
	Moved(ctx context.Context, topic string, partitions int, assigned []int32, since time.Time, max int) ([]idwindow.StoredID, error)
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

	mu       sync.Mutex
	rows     []migrations.Row
	parts    []int32        // the partition of each buffered row
	keys     []idwindow.Key // the window key of each buffered row
	pending  []*kgo.Record  // every record the buffered rows came from, incl. skipped ones
	oldest   time.Time
	inflight []*batch            // handed to the inserter, oldest first
	idBuf    []idwindow.StoredID // the next batch's buffer for its ids
	policy   event.Policy

	ids *idwindow.Window // nil when the idempotency window is off
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
	if cfg.DedupeWindow > 0 {
		w.ids = idwindow.New(cfg.DedupeWindow, cfg.DedupeMaxIDs)
		if reg != nil {
			reg.MustRegister(w.ids.Gauges("audittrail_writer", "AUDITTRAIL_WRITER_DEDUPE_MAX_IDS", now)...)
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
// flushes by age while the poller waits for records.
func (w *Writer) Run(ctx context.Context) error {
	// Inserts outlive ctx until the shutdown deadline, so the final flush
	// can finish what is in flight.
	insertCtx, cancelInserts := context.WithCancel(context.WithoutCancel(ctx))
	w.inserts = make(chan *batch, 1)
	// Up to InsertStreams batches are stored at once; the registrar takes
	// them in batch order, so offsets are still marked in order.
	w.registers = make(chan *batch, w.cfg.InsertStreams)
	w.spare = make(chan batch, w.cfg.InsertStreams+2)
	slots := make(chan struct{}, w.cfg.InsertStreams)
	var stages sync.WaitGroup
	stages.Go(func() {
		for {
			select {
			case b := <-w.inserts:
				rows, ids := w.fresh(b) // in batch order, before the next batch
				b.stored = make(chan error, 1)
				select {
				case slots <- struct{}{}:
					stages.Go(func() {
						defer func() { <-slots }()
						b.stored <- w.insert(insertCtx, b, rows, ids)
					})
				case <-insertCtx.Done():
					b.stored <- fmt.Errorf("insert %d rows: %w", len(rows), insertCtx.Err())
				}
				select {
				case w.registers <- b:
				case <-insertCtx.Done():
					b.done <- fmt.Errorf("register %d ids: %w", len(ids), insertCtx.Err())
				}
			case <-insertCtx.Done():
				return
			}
		}
	})
	stages.Go(func() {
		for {
			select {
			case b := <-w.registers:
				var err error
				select {
				case err = <-b.stored:
				case <-insertCtx.Done():
					err = fmt.Errorf("insert %d rows: %w", len(b.rows), insertCtx.Err())
				}
				if err == nil {
					err = w.register(insertCtx, b)
				}
				if err == nil {
					w.recycle(b)
				}
				b.done <- err
			case <-insertCtx.Done():
				return
			}
		}
	})
	// Deferred in this order: the client closes first (leaving the group,
	// with nothing left to flush), then the inserter and registrar stop.
	defer func() { cancelInserts(); stages.Wait() }()
	defer w.cl.Close()

	polled := make(chan kgo.Fetches)
	processed := make(chan struct{})
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for {
			fetches := w.cl.PollRecords(ctx, w.cfg.BatchSize)
			select {
			case polled <- fetches:
				<-processed
				w.cl.AllowRebalance()
			case <-ctx.Done():
				w.cl.AllowRebalance()
				return
			}
		}
	}()

	timer := time.NewTimer(w.cfg.BatchAge)
	defer timer.Stop()
	var runErr error
	var conv []converted // reused from poll to poll
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case fetches := <-polled:
			fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					w.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
				}
			})
			fetches.EachPartition(w.observeLag)
			recs := fetches.Records()
			conv = w.convert(conv, recs) // outside the lock: decoding is the costly part
			w.mu.Lock()
			var addErr error
			for i, r := range recs {
				if addErr = w.add(ctx, r, &conv[i]); addErr != nil {
					break
				}
				if len(w.rows) >= w.cfg.BatchSize && runErr == nil {
					runErr = w.flushLocked(ctx) // batches hold BatchSize rows at most
				}
			}
			if addErr != nil {
				// Shutting down before a dead letter was parked: keep
				// nothing, commit nothing; the records are replayed.
				w.dropLocked()
				w.mu.Unlock()
				processed <- struct{}{}
				<-pollerDone
				return addErr
			}
			w.mu.Unlock()
			processed <- struct{}{}
		case <-timer.C:
			w.mu.Lock()
			if len(w.pending) > 0 && w.now().Sub(w.oldest) >= w.cfg.BatchAge {
				runErr = w.flushLocked(ctx)
			}
			w.mu.Unlock()
		}
		if runErr != nil && ctx.Err() == nil {
			return runErr
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(w.untilDue())
	}
	<-pollerDone

	// Shutdown: input stopped; flush, wait for the inserts, commit, close.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
	defer cancel()
	w.mu.Lock()
	err := w.flushLocked(sctx)
	if err == nil {
		err = w.waitLocked(sctx)
	}
	if err != nil {
		w.dropLocked()
	}
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	if err := w.cl.CommitMarkedOffsets(sctx); err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	return nil
}

// observeLag records a partition's lag after a fetch: its high watermark
// minus the next offset to consume.
func (w *Writer) observeLag(p kgo.FetchTopicPartition) {
	if n := len(p.Records); n > 0 {
		lag := p.HighWatermark - p.Records[n-1].Offset - 1
		w.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
	}
}
