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
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
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
	// gate holds moved workspaces' records after a partition-count
	// increase until their old partition is stored (nil with ids).
	gate *handover.Gate
}

// batch is a set of rows on its way to ClickHouse with the records they
// came from (including skipped and dead-lettered ones). The inserter marks
// the records for commit once the rows are stored, in batch order.
type batch struct {
	rows   []migrations.Row
	parts  []int32             // partition of each row
	keys   []idwindow.Key      // window key of each row
	ids    []idwindow.StoredID // the stored rows' ids, set by insert (before: a buffer for them)
	recs   []*kgo.Record
	stored chan error // receives the insert's outcome once
	done   chan error // receives the outcome once
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
	if w.ids != nil {
		w.gate = handover.New(handover.Config{Topic: cfg.Topic, Groups: []string{cfg.Group}}, handover.NewKafkaOffsets(cl), now)
		if reg != nil {
			reg.MustRegister(w.gate.Collectors("audittrail_writer")...)
		}
	}
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

	polled := make(chan polledRecords)
	processed := make(chan struct{})
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		for {
			fetches, recs := w.poll(ctx)
			select {
			case polled <- polledRecords{fetches, recs}:
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
		case got := <-polled:
			got.fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					w.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
				}
			})
			got.fetches.EachPartition(w.observeLag)
			recs := got.recs
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

// polledRecords is one poll: its fetches and the records to process now.
type polledRecords struct {
	fetches kgo.Fetches
	recs    []*kgo.Record
}

// poll polls and passes the records through the gate: the records it
// holds are kept back, the ones it releases come along. While it holds a
// partition, a poll waits at most holdPoll, so that a release does not
// wait for new records.
func (w *Writer) poll(ctx context.Context) (kgo.Fetches, []*kgo.Record) {
	if w.gate == nil {
		fetches := w.cl.PollRecords(ctx, w.cfg.BatchSize)
		return fetches, fetches.Records()
	}
	pctx := ctx
	if w.gate.Holding() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, holdPoll)
		defer cancel()
	}
	fetches := w.cl.PollRecords(pctx, w.cfg.BatchSize)
	res, err := w.gate.Pass(ctx, fetches.Records())
	if err != nil && ctx.Err() == nil {
		w.log.Warn("handover: offsets not read; holding", "err", err)
	}
	w.applyGate(ctx, res)
	return fetches, res.Ready
}

// holdPoll bounds a poll while the gate holds a partition.
const holdPoll = 100 * time.Millisecond

// applyGate pauses and resumes what the gate decided and loads the
// released workspaces' ids before their records are processed.
func (w *Writer) applyGate(ctx context.Context, res handover.Result) {
	if len(res.Pause) > 0 {
		w.cl.PauseFetchPartitions(map[string][]int32{w.cfg.Topic: res.Pause})
	}
	for _, l := range res.Loads {
		w.load(ctx, "load moved workspaces' ids", l.Partition, func(since time.Time) ([]idwindow.StoredID, error) {
			return w.sink.MovedFrom(ctx, w.cfg.Topic, l.Partition, l.Workspaces, since, w.cfg.DedupeMaxIDs)
		})
	}
	if len(res.TimedOut) > 0 {
		w.log.Warn("handover: partitions went on before their moved workspaces' old partitions were stored",
			"partitions", res.TimedOut, "max_hold", handover.DefaultMaxHold)
	}
	if len(res.Resume) > 0 {
		w.cl.ResumeFetchPartitions(map[string][]int32{w.cfg.Topic: res.Resume})
	}
}

// observeLag records a partition's lag after a fetch: its high watermark
// minus the next offset to consume.
func (w *Writer) observeLag(p kgo.FetchTopicPartition) {
	if n := len(p.Records); n > 0 {
		lag := p.HighWatermark - p.Records[n-1].Offset - 1
		w.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
	}
}

// untilDue is how long until the oldest buffered row is due, or BatchAge
// when nothing is buffered.
func (w *Writer) untilDue() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return w.cfg.BatchAge
	}
	return max(w.cfg.BatchAge-w.now().Sub(w.oldest), time.Millisecond)
}

// add turns one record into a row, a dead letter or a skip. It fails only
// when ctx ends before a dead letter is parked. Called with mu held.
func (w *Writer) add(ctx context.Context, r *kgo.Record, c *converted) error {
	switch {
	case c.err != nil:
		if err := w.deadLetter(ctx, r, c.reason, c.err); err != nil {
			return err
		}
	case c.reason == reasonExpired:
		w.m.expired.Inc()
	default:
		w.rows = append(w.rows, c.row)
		w.parts = append(w.parts, r.Partition)
		w.keys = append(w.keys, c.key)
	}
	if len(w.pending) == 0 {
		w.oldest = w.now()
	}
	w.pending = append(w.pending, r)
	return nil
}

const (
	reasonUndecodable = "undecodable"
	reasonInvalid     = "invalid"
	reasonExpired     = "expired"
)

// converted is the outcome of toRow for one record.
type converted struct {
	row    migrations.Row
	key    idwindow.Key // set when the writer has an idempotency window
	reason string
	err    error
}

// convert runs toRow over recs, spreading large polls over every core. It
// returns the outcomes in out, grown when needed.
func (w *Writer) convert(out []converted, recs []*kgo.Record) []converted {
	if cap(out) < len(recs) {
		out = make([]converted, len(recs))
	}
	out = out[:len(recs)]
	// One clock reading for the whole poll: the retention and future-skew
	// checks do not need a fresher one per record.
	now := w.now()
	policy := w.policy
	policy.Now = func() time.Time { return now }
	one := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c := &out[i]
			c.row, c.reason, c.err = toRow(recs[i], &policy, now, w.cfg.RetentionDays)
			c.key = idwindow.Key{}
			if c.err == nil && c.reason == "" && w.ids != nil {
				c.key = idwindow.KeyOf(c.row.WorkspaceID, c.row.ID)
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(recs) < 512 || workers == 1 {
		one(0, len(recs))
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(recs) + workers - 1) / workers
	for lo := 0; lo < len(recs); lo += chunk {
		wg.Go(func() { one(lo, min(lo+chunk, len(recs))) })
	}
	wg.Wait()
	return out
}

// toRow decodes, validates and flattens one record, at now; events older
// than retentionDays are reported expired.
func toRow(r *kgo.Record, policy *event.Policy, now time.Time, retentionDays int) (migrations.Row, string, error) {
	e, changes, err := event.DecodeStored(r.Value)
	if err != nil {
		return migrations.Row{}, reasonUndecodable, err
	}
	if err := policy.Validate(&e); err != nil {
		return migrations.Row{}, reasonInvalid, err
	}
	if e.ID == "" || e.ReceivedAt.IsZero() {
		return migrations.Row{}, reasonInvalid, errors.New("id and received_at are set by the ingest path and must not be empty")
	}
	if string(r.Key) != e.WorkspaceID {
		return migrations.Row{}, reasonInvalid, fmt.Errorf("record key %q is not the event's workspace_id", truncate(string(r.Key), 64))
	}
	if e.Timestamp.Before(now.Add(-time.Duration(retentionDays) * 24 * time.Hour)) {
		return migrations.Row{}, reasonExpired, nil
	}
	return migrations.RowWithChanges(&e, changes), "", nil
}

// deadLetter publishes r to the dead-letter topic and waits for the ack,
// retrying until it succeeds or ctx ends: a poison record's offset is
// committed only once it is safely parked.
func (w *Writer) deadLetter(ctx context.Context, r *kgo.Record, reason string, cause error) error {
	msg := cause.Error()
	dl := &kgo.Record{
		Topic: w.cfg.DeadLetterTopic,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader{}, r.Headers...),
			kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: []byte(reason + ": " + truncate(msg, 1024))},
			kgo.RecordHeader{Key: topics.HeaderDLQTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: topics.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: topics.HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		),
	}
	backoff := w.cfg.RetryMin
	for {
		rec := *dl // a record may be produced only once at a time
		err := w.cl.ProduceSync(ctx, &rec).FirstErr()
		if err == nil {
			w.m.deadLetters.WithLabelValues(reason).Inc()
			w.log.Warn("record dead-lettered", "reason", reason, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", msg)
			return nil
		}
		w.log.Error("dead-letter publish failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("dead-letter %s/%d/%d: %w", r.Topic, r.Partition, r.Offset, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, w.cfg.RetryMax)
	}
}

// flushLocked hands the buffered rows to the inserter and starts a new
// buffer. It blocks while the inserter already has a batch queued (so at
// most InsertStreams+2 batches are in flight: fetching pauses meanwhile)
// and reports the first failed insert. Called with mu held.
func (w *Writer) flushLocked(ctx context.Context) error {
	if len(w.pending) == 0 {
		return w.reapLocked()
	}
	b := &batch{rows: w.rows, parts: w.parts, keys: w.keys, ids: w.idBuf, recs: w.pending, done: make(chan error, 1)}
	select {
	case w.inserts <- b:
	case <-ctx.Done():
		return fmt.Errorf("queue insert of %d rows: %w", len(b.rows), ctx.Err())
	}
	w.inflight = append(w.inflight, b)
	select {
	case sp := <-w.spare:
		w.rows, w.parts, w.keys, w.pending, w.idBuf = sp.rows, sp.parts, sp.keys, sp.recs, sp.ids
	default:
		w.idBuf = nil
		w.rows = make([]migrations.Row, 0, min(len(b.rows), w.cfg.BatchSize))
		w.parts = make([]int32, 0, min(len(b.rows), w.cfg.BatchSize))
		w.keys = make([]idwindow.Key, 0, min(len(b.rows), w.cfg.BatchSize))
		w.pending = make([]*kgo.Record, 0, min(len(b.recs), w.cfg.BatchSize))
	}
	return w.reapLocked()
}

// recycle hands a finished batch's buffers, emptied, to the next batches:
// a busy writer then builds batches in the same memory instead of
// allocating (and growing) new buffers for each.
func (w *Writer) recycle(b *batch) {
	clear(b.rows[:cap(b.rows)]) // fresh kept the rows it stores at the front
	clear(b.recs)
	clear(b.ids[:cap(b.ids)]) // as rows: a batch may store fewer ids than its buffer held before
	select {
	case w.spare <- batch{rows: b.rows[:0], parts: b.parts[:0], keys: b.keys[:0], ids: b.ids[:0], recs: b.recs[:0]}:
	default:
	}
}

// reapLocked forgets the batches the inserter finished, oldest first, and
// returns the first failure. Called with mu held.
func (w *Writer) reapLocked() error {
	for len(w.inflight) > 0 {
		select {
		case err := <-w.inflight[0].done:
			w.inflight = w.inflight[1:]
			if err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// waitLocked waits until every batch handed to the inserter is stored and
// marked. Called with mu held.
func (w *Writer) waitLocked(ctx context.Context) error {
	for len(w.inflight) > 0 {
		select {
		case err := <-w.inflight[0].done:
			w.inflight = w.inflight[1:]
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("wait for inserts: %w", ctx.Err())
		}
	}
	return nil
}

// insert stores a batch's fresh rows (see fresh), retrying with capped
// exponential backoff until ClickHouse acknowledges or ctx ends, and keeps
// their ids in b.ids, stamped with the time they were stored, for register.
func (w *Writer) insert(ctx context.Context, b *batch, rows []migrations.Row, ids []idwindow.StoredID) error {
	if len(rows) == 0 {
		return nil
	}
	start := time.Now()
	if err := w.retry(ctx, "insert", len(rows), w.m.insertErrors, func() error { return w.sink.Insert(ctx, rows) }); err != nil {
		return err
	}
	w.m.insertLatency.Observe(time.Since(start).Seconds())
	w.m.batchSize.Observe(float64(len(rows)))
	w.m.inserted.Add(float64(len(rows)))
	now := w.now()
	for i := range ids {
		ids[i].StoredAt = now
	}
	b.ids = ids
	return nil
}

// register records a stored batch's ids in the registry, retrying until
// it succeeds or ctx ends, then marks the batch's records for commit: a
// committed offset always has its ids registered, so the next owner of the
// partition loads them. Only the registrar goroutine calls it, in batch
// order, so marks advance in order.
func (w *Writer) register(ctx context.Context, b *batch) error {
	if len(b.ids) > 0 {
		if err := w.retry(ctx, "register ids", len(b.ids), w.m.registryErrs, func() error { return w.sink.Register(ctx, b.ids) }); err != nil {
			return err
		}
	}
	w.cl.MarkCommitRecords(b.recs...)
	return nil
}

// fresh returns the batch's rows that are not in the idempotency window
// nor repeated within the batch, with their ids, and claims them in the
// window at once (so the next batch is checked against them while this one
// is being stored). It keeps the rows in b.rows, in place.
func (w *Writer) fresh(b *batch) ([]migrations.Row, []idwindow.StoredID) {
	if w.ids == nil {
		return b.rows, nil
	}
	claims := w.claims[:0]
	for i := range b.rows {
		claims = append(claims, idwindow.Claim{Key: b.keys[i], TimestampNs: b.rows[i].TimestampNs})
	}
	w.claims = claims
	w.m.windowEvicted.Add(float64(w.ids.Claim(w.now(), claims)))
	rows := b.rows[:0]
	ids := b.ids[:0] // a finished batch's buffer, or nil
	if cap(ids) < len(b.rows) {
		ids = make([]idwindow.StoredID, 0, len(b.rows))
	}
	var replayed, conflicts int
	for i := range claims {
		switch c := &claims[i]; {
		case c.New:
			r := &b.rows[i]
			ids = append(ids, idwindow.StoredID{Topic: w.cfg.Topic, Partition: b.parts[i], WorkspaceID: r.WorkspaceID, ID: r.ID, TimestampNs: r.TimestampNs})
			if len(rows) != i {
				b.rows[len(rows)] = *r
			}
			rows = rows[:len(rows)+1]
		case c.First == c.TimestampNs:
			replayed++
		default:
			conflicts++
		}
	}
	w.m.duplicates.WithLabelValues("replayed").Add(float64(replayed))
	w.m.duplicates.WithLabelValues("conflict").Add(float64(conflicts))
	if conflicts > 0 {
		w.log.Info("events not stored: id already stored with another timestamp", "events", conflicts)
	}
	return rows, ids
}

// retry runs op until it succeeds or ctx ends, with capped exponential
// backoff, counting each failure in failures.
func (w *Writer) retry(ctx context.Context, what string, n int, failures prometheus.Counter, op func() error) error {
	backoff := w.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		failures.Inc()
		w.log.Warn(what+" failed; will retry", "rows", n, "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %d rows: %w (last error: %v)", what, n, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, w.cfg.RetryMax)
	}
}

// onAssigned counts the partitions this instance owns and loads into the
// idempotency window the ids recently stored from them, and those stored
// from other partitions by workspaces now keyed to them (moved there by a
// partition-count increase), before any of their records is read (a
// previous owner registered every id it stored before its offsets were
// committed).
func (w *Writer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	for topic, ps := range assigned {
		w.m.assigned.Add(float64(len(ps)))
		if w.ids == nil {
			continue
		}
		for _, p := range ps {
			w.load(ctx, "load recent ids", p, func(since time.Time) ([]idwindow.StoredID, error) {
				return w.sink.Recent(ctx, topic, p, since, w.cfg.DedupeMaxIDs)
			})
		}
		var counts []idwindow.Count
		now := w.now()
		w.load(ctx, "load moved workspaces' ids", -1, func(since time.Time) ([]idwindow.StoredID, error) {
			n, err := idwindow.PartitionCount(ctx, cl, topic)
			if err != nil {
				return nil, err
			}
			if counts, err = w.sink.PartitionCounts(ctx, topic, n, now); err != nil {
				return nil, err
			}
			return w.sink.Moved(ctx, topic, n, ps, since, w.cfg.DedupeMaxIDs)
		})
		if n := len(counts); n > 0 {
			w.gate.Assign(ps, counts[n-1].Partitions, handover.Older(counts, counts[n-1].Partitions, now, handover.Window))
		}
	}
}

// load adds the ids read stored since the window's start to the window,
// retrying read until it succeeds or ctx ends (partition -1: several).
func (w *Writer) load(ctx context.Context, what string, partition int32, read func(since time.Time) ([]idwindow.StoredID, error)) {
	now := w.now()
	var ids []idwindow.StoredID
	err := w.retry(ctx, what, 0, w.m.registryErrs, func() error {
		var err error
		ids, err = read(now.Add(-w.cfg.DedupeWindow))
		return err
	})
	if err != nil {
		w.log.Warn("idempotency window not loaded", "what", what, "partition", partition, "err", err)
		return
	}
	w.m.windowEvicted.Add(float64(w.ids.Add(now, ids)))
}

// onRevoked flushes, waits for the inserts and commits before partitions
// move to another member.
func (w *Writer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	w.forgetHeld(cl, revoked)
	w.mu.Lock()
	err := w.flushLocked(ctx)
	if err == nil {
		err = w.waitLocked(ctx)
	}
	if err != nil {
		w.log.Warn("flush on revoke failed; records will be replayed", "err", err)
		w.dropLocked()
	}
	w.mu.Unlock()
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		// The rows are stored; a failed commit only means a replay later,
		// which the table collapses.
		w.m.commitErrors.Inc()
		w.log.Warn("commit on revoke failed; records will be replayed", "err", err)
	}
}

// onLost drops the buffer: the partitions belong to someone else now, and
// committing for them could rewind their progress.
func (w *Writer) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	w.forgetHeld(cl, lost)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropLocked()
}

// forgetHeld counts partitions leaving and drops the records the gate
// holds of them (unprocessed, so not committed), resuming their fetching
// so that a later assignment does not start paused.
func (w *Writer) forgetHeld(cl *kgo.Client, gone map[string][]int32) {
	for topic, ps := range gone {
		w.m.assigned.Sub(float64(len(ps)))
		if w.gate == nil {
			continue
		}
		if resume := w.gate.Revoke(ps); len(resume) > 0 {
			cl.ResumeFetchPartitions(map[string][]int32{topic: resume})
		}
	}
}

// dropLocked forgets the buffer and the batches in flight (those still
// mark their records if their insert succeeds, which is correct: marks
// only follow stored rows).
func (w *Writer) dropLocked() {
	w.rows = w.rows[:0]
	w.parts = w.parts[:0]
	w.keys = w.keys[:0]
	w.pending = w.pending[:0]
	w.inflight = nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
