// Package emitter is the Go library the platform's services use to publish
// audit events to Kafka.
//
// Events are validated against the contract and the catalogue before
// anything is sent, keyed by workspace id with Kafka's standard murmur2
// partitioning (the Java client's default, so producers in every language
// put a workspace on the same partition), and published with acks=all by an
// idempotent producer with compression and a short linger for batching.
// Every record carries the headers event and schema_version.
//
// Emit waits for the broker's acknowledgement. EmitAsync returns as soon as
// the event is buffered and reports the outcome to a callback. The buffer is
// bounded in events and bytes: when it is full, both block until space frees
// or their context ends, so a slow or unreachable broker never makes the
// emitter grow without bound. Flush waits for everything buffered; Close
// and Shutdown deliver or fail every buffered event, so every callback fires
// exactly once.
package emitter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Defaults of Config.
const (
	DefaultDeliveryTimeout   = 30 * time.Second
	DefaultMaxBufferedEvents = 10000
	DefaultMaxBufferedBytes  = 32 << 20
	DefaultLinger            = 5 * time.Millisecond
	// MaxEventBytes is the largest encoded event (key, value and headers)
	// the emitter accepts; Kafka's default message limit is 1 MiB.
	MaxEventBytes = 1 << 20
)

// Config configures an Emitter. The zero value of every field means its
// default.
type Config struct {
	// Topic receives the events (default topics.Events).
	Topic string
	// Policy decides which event names are accepted.
	Policy event.Policy
	// DeliveryTimeout bounds how long one event may wait for its
	// acknowledgement, retries included (default 30 s). An event not
	// acknowledged in time fails with an error wrapping
	// kgo.ErrRecordTimeout.
	DeliveryTimeout time.Duration
	// MaxBufferedEvents bounds the events accepted and not yet
	// acknowledged or failed (default 10,000).
	MaxBufferedEvents int
	// MaxBufferedBytes bounds their encoded size (default 32 MiB).
	MaxBufferedBytes int
	// Linger is how long a partition's batch waits for more events before
	// it is sent (default 5 ms; negative: no linger).
	Linger time.Duration
	// Producer names the service that emits, recorded as sender.producer
	// on every event (replacing whatever the caller put in ev.Sender), so
	// the trail shows which service sent each event. Default: the base
	// name of the running executable (DefaultProducer). At most
	// event.MaxIDLen bytes of UTF-8 without control characters. The
	// emitter records no sender.credential_id: it writes to Kafka
	// directly, where the broker's ACLs, not an ingest credential,
	// authenticate it (docs/security-sender.md).
	Producer string
}

// DefaultProducer is the default Config.Producer: the base name of the
// running executable, or "emitter" when that is not known or not a valid
// name.
func DefaultProducer() string {
	exe, err := os.Executable()
	if err != nil {
		return "emitter"
	}
	name := filepath.Base(exe)
	if validProducer(name) != nil {
		return "emitter"
	}
	return name
}

// validProducer checks a producer name as the contract checks
// sender.producer.
func validProducer(name string) error {
	if name == "" || len(name) > event.MaxIDLen || !utf8.ValidString(name) {
		return fmt.Errorf("Producer=%q: must be 1-%d bytes of UTF-8", name, event.MaxIDLen)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("Producer=%q: must not contain control characters", name)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = topics.Events
	}
	if c.Producer == "" {
		c.Producer = DefaultProducer()
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.MaxBufferedEvents <= 0 {
		c.MaxBufferedEvents = DefaultMaxBufferedEvents
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	return c
}

// Validate reports configuration that cannot work (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.MaxBufferedBytes < MaxEventBytes {
		errs = append(errs, fmt.Errorf("MaxBufferedBytes=%d: must hold at least one event of %d bytes", c.MaxBufferedBytes, MaxEventBytes))
	}
	if c.Linger > time.Second {
		errs = append(errs, fmt.Errorf("Linger=%s: at most 1s, or events wait too long", c.Linger))
	}
	if err := validProducer(c.Producer); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Partitioner is how the emitter (and the ingest gateway) choose a record's
// partition: Kafka's default for keyed records, murmur2 of the key with the
// sign bit cleared, modulo the partition count. Records are keyed by
// workspace id.
func Partitioner() kgo.Partitioner { return kgo.StickyKeyPartitioner(nil) }

// MetadataMaxAge is how soon a producer (the emitter, the gateway) notices
// that partitions were added to the topic, and so starts putting moved
// workspaces on their new partition (franz-go's default is 5 minutes). The
// shorter this is, the shorter the time during which one producer sends a
// workspace to its old partition while another sends it to its new one
// (docs/partitioning.md); a metadata request per client every 30 seconds
// costs the brokers nothing that matters.
const MetadataMaxAge = 30 * time.Second

// ProducerOptions are the franz-go options an Emitter adds to the broker
// options it is given: the murmur2 key partitioner, MetadataMaxAge, acks from all in-sync
// replicas, idempotence (franz-go's default), compression, linger, the
// delivery timeout, and buffer limits above the emitter's own (which are
// the ones that apply; see Config).
func ProducerOptions(cfg Config) []kgo.Opt {
	cfg = cfg.withDefaults()
	return []kgo.Opt{
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(Partitioner()),
		kgo.MetadataMaxAge(MetadataMaxAge),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		// The emitter's budget is taken before a record reaches the client
		// and returned in its promise, just before the client forgets it;
		// twice the budget keeps the client from ever blocking a produce.
		kgo.MaxBufferedRecords(2 * cfg.MaxBufferedEvents),
		kgo.MaxBufferedBytes(2 * cfg.MaxBufferedBytes),
	}
}

// Emitter publishes audit events. It is safe for concurrent use. Close (or
// Shutdown) it when done.
type Emitter struct {
	cfg    Config
	cl     *kgo.Client
	now    func() time.Time
	budget *budget

	closed    atomic.Bool
	sizeHint  atomic.Int64 // initial capacity of an encoding buffer
	delivered atomic.Int64
	failed    atomic.Int64
}

// New returns an Emitter with its own Kafka client built from brokerOpts
// (kafkaconn.Config.Options, or kgo.SeedBrokers). now is the clock used for
// validation and received_at (nil: time.Now).
func New(cfg Config, brokerOpts []kgo.Opt, now func() time.Time) (*Emitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	cfg.Policy.Now = now
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, brokerOpts...), ProducerOptions(cfg)...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	em := &Emitter{cfg: cfg, cl: cl, now: now,
		budget: newBudget(int64(cfg.MaxBufferedEvents), int64(cfg.MaxBufferedBytes))}
	em.sizeHint.Store(1024)
	return em, nil
}

// Record sets ev.Sender to the configured producer (no credential id),
// validates ev (Policy.Validate, and event.CheckJSON on its encoding),
// fills id (when empty), category and received_at, and returns
// the Kafka record for it: keyed by workspace id, with the
// event and schema_version headers. Each call returns a new record.
func (e *Emitter) Record(ev *event.Event) (*kgo.Record, error) {
	ev.Sender = event.Sender{Producer: e.cfg.Producer}
	if err := e.cfg.Policy.Validate(ev); err != nil {
		return nil, err
	}
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	ev.ReceivedAt = e.now().UTC()
	// Size the buffer from recent events so encoding rarely grows it.
	value, err := event.Encode(make([]byte, 0, e.sizeHint.Load()), ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	// The bounds of the contract's JSON (depth, keys, duplicate keys and
	// control characters in properties and changes), as the gateway and
	// the writer check them.
	if err := event.CheckJSON(value); err != nil {
		return nil, err
	}
	if hint := int64(len(value)) + 64; hint > e.sizeHint.Load() || hint < e.sizeHint.Load()/2 {
		e.sizeHint.Store(min(hint, 64<<10))
	}
	return &kgo.Record{
		Topic: e.cfg.Topic,
		Key:   []byte(ev.WorkspaceID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: topics.HeaderEvent, Value: []byte(ev.Event)},
			{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
		},
	}, nil
}

var (
	// ErrClosed is reported for events emitted after Close or Shutdown
	// began, and for buffered events Shutdown could not deliver in time.
	ErrClosed = errors.New("emitter closed")
	// ErrTooLarge is reported for an event whose encoding exceeds
	// MaxEventBytes.
	ErrTooLarge = errors.New("event too large")
	// ErrNotAcknowledged is returned by Emit when the broker did not
	// acknowledge the event within the delivery timeout and the client
	// cannot tell whether it was stored (a broker went away while a
	// request was in flight). The emitter keeps retrying it; emitting it
	// again with the same id is safe.
	ErrNotAcknowledged = errors.New("event not acknowledged within the delivery timeout")
)

// Retryable reports whether emitting the same event again (same id) may
// succeed: true for delivery failures (broker unreachable, not acknowledged
// in time, a cancelled wait), false for invalid or oversized events and a
// closed emitter. Sending an event again with its id is always safe.
func Retryable(err error) bool {
	var ve *event.ValidationError
	switch {
	case err == nil, errors.As(err, &ve), errors.Is(err, ErrTooLarge), errors.Is(err, ErrClosed),
		errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return false
	}
	return true
}

func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// EmitAsync validates ev and buffers it for publishing, then calls done
// with the event as published (id, category and received_at filled) and
// nil once the broker acknowledged it, or with the error that stopped it.
// done is called exactly once for every call, and may be nil.
//
// An invalid event (*event.ValidationError), an oversized one (ErrTooLarge)
// or a closed emitter (ErrClosed) is reported to done before EmitAsync
// returns, and takes no buffer space. When the buffer is full EmitAsync
// blocks until space frees; if ctx ends first, done receives an error
// wrapping ctx's error and nothing is published. ctx only bounds that wait:
// once EmitAsync has returned, the event is delivered or fails on its own
// (within Config.DeliveryTimeout), whatever happens to ctx.
//
// A delivery the client cannot safely give up on (a broker went away while
// a request was in flight, so the event may be stored) is retried until the
// broker answers or Shutdown fails it; the callback waits for that outcome.
//
// Callbacks run one at a time on the emitter's delivery goroutine, in the
// order of acknowledgement (per workspace, the order of EmitAsync calls).
// They must be quick and must not call Emit, Flush, Close or Shutdown on
// the same emitter (that waits on the goroutine running them); EmitAsync
// from a callback is allowed only from a new goroutine.
func (e *Emitter) EmitAsync(ctx context.Context, ev event.Event, done func(event.Event, error)) {
	if done == nil {
		done = func(event.Event, error) {}
	}
	if e.closed.Load() {
		e.failed.Add(1)
		done(ev, ErrClosed)
		return
	}
	r, err := e.Record(&ev)
	if err != nil {
		e.failed.Add(1)
		done(ev, err)
		return
	}
	size := recordBytes(r)
	if size > MaxEventBytes {
		e.failed.Add(1)
		done(ev, fmt.Errorf("event %s is %d bytes, at most %d: %w", ev.ID, size, MaxEventBytes, ErrTooLarge))
		return
	}
	if err := e.budget.acquire(ctx, size); err != nil {
		e.failed.Add(1)
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("wait for buffer space for event %s: %w", ev.ID, err)
		}
		done(ev, err)
		return
	}
	// The record's own context never cancels it: delivery is bounded by
	// the delivery timeout and by Shutdown.
	e.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
		if err != nil {
			e.failed.Add(1)
			if errors.Is(err, kgo.ErrClientClosed) {
				err = ErrClosed
			}
			err = fmt.Errorf("publish event %s: %w", ev.ID, err)
		} else {
			e.delivered.Add(1)
		}
		done(ev, err)
		e.budget.release(size)
	})
}

// Emit validates ev and publishes it, returning nil once the broker
// acknowledged it (acks=all), or the validation error
// (*event.ValidationError), ErrTooLarge, ErrClosed or the delivery error.
// Emit never waits much longer than the delivery timeout for the
// acknowledgement: a second past it, it returns ErrNotAcknowledged. If ctx ends
// first, Emit returns an error wrapping ctx's error. In both cases the
// event may still be delivered, and emitting it again with the same id is
// safe (see the README on idempotency). Safe for concurrent use.
func (e *Emitter) Emit(ctx context.Context, ev event.Event) error {
	result := make(chan error, 1)
	e.EmitAsync(ctx, ev, func(_ event.Event, err error) { result <- err })
	select {
	case err := <-result:
		return err
	default:
	}
	// A second of grace lets the client report its own timeout first.
	timer := time.NewTimer(e.cfg.DeliveryTimeout + time.Second)
	defer timer.Stop()
	select {
	case err := <-result:
		return err
	case <-timer.C:
		return fmt.Errorf("publish event: %w", ErrNotAcknowledged)
	case <-ctx.Done():
		return fmt.Errorf("wait for acknowledgement: %w", ctx.Err())
	}
}

// Flush sends everything buffered without waiting for the linger and
// returns once every event emitted before the call has been acknowledged or
// failed and its callback has returned, or ctx's error. Events emitted
// while Flush runs prolong it.
func (e *Emitter) Flush(ctx context.Context) error {
	if err := e.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := e.budget.wait(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// Shutdown stops accepting events (later ones are reported with ErrClosed,
// as are callers still waiting for buffer space), delivers what is
// buffered until ctx ends, then closes the Kafka client, failing whatever
// is left with ErrClosed. It returns once every callback has fired: nil if
// everything buffered was delivered or failed on its own, else ctx's error.
// Calling it again returns at once.
func (e *Emitter) Shutdown(ctx context.Context) error {
	if e.closed.Swap(true) {
		return nil
	}
	e.budget.close(ErrClosed)
	err := e.Flush(ctx)
	e.cl.Close()
	// Closing fails every record still buffered; their callbacks follow.
	_ = e.budget.wait(context.Background())
	return err
}

// Close is Shutdown bounded by Config.DeliveryTimeout.
func (e *Emitter) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DeliveryTimeout)
	defer cancel()
	_ = e.Shutdown(ctx)
}

// Ping checks that a broker answers.
func (e *Emitter) Ping(ctx context.Context) error { return e.cl.Ping(ctx) }

// Stats is a snapshot of an emitter's counters.
type Stats struct {
	// Buffered events (and their bytes) are accepted and not yet
	// acknowledged or failed; Waiting callers are blocked for space.
	Buffered      int
	BufferedBytes int64
	Waiting       int
	// PeakBuffered is the most events ever buffered at once.
	PeakBuffered int
	// Delivered and Failed count callbacks fired so far, by outcome.
	Delivered, Failed int64
}

// Stats returns the current counters.
func (e *Emitter) Stats() Stats {
	events, bytes, waiting, peak := e.budget.usage()
	return Stats{Buffered: int(events), BufferedBytes: bytes, Waiting: waiting, PeakBuffered: int(peak),
		Delivered: e.delivered.Load(), Failed: e.failed.Load()}
}
