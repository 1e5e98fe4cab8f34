// Package emitter is the Go library the platform's services use to publish
// audit events to Kafka. Events are validated against the contract and the
// catalogue before anything is sent, keyed by workspace id (Kafka's murmur2
// partitioning, as every other client), and published with acks=all by an
// idempotent producer. Emit returns only once the broker acknowledged.
package emitter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Config configures an Emitter.
type Config struct {
	// Topic receives the events (default topics.Events).
	Topic string
	// Policy decides which event names are accepted.
	Policy event.Policy
	// DeliveryTimeout bounds how long one event may wait for its
	// acknowledgement, retries included (default 30 s).
	DeliveryTimeout time.Duration
}

// Emitter publishes audit events. It is safe for concurrent use; Close it
// when done.
type Emitter struct {
	cfg Config
	cl  *kgo.Client
	now func() time.Time
}

// ProducerOptions are the franz-go options an Emitter adds to the broker
// options it is given: acks from all in-sync replicas, idempotence (franz-go's
// default), compression, a short linger for batching.
func ProducerOptions(cfg Config) []kgo.Opt {
	return []kgo.Opt{
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
	}
}

// New returns an Emitter with its own Kafka client built from brokerOpts
// (kafkaconn.Config.Options, or kgo.SeedBrokers).
func New(cfg Config, brokerOpts []kgo.Opt, now func() time.Time) (*Emitter, error) {
	if cfg.Topic == "" {
		cfg.Topic = topics.Events
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	cfg.Policy.Now = now
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, brokerOpts...), ProducerOptions(cfg)...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Emitter{cfg: cfg, cl: cl, now: now}, nil
}

// Record validates ev, fills id (when empty), category and received_at,
// and returns the Kafka record for it.
func (e *Emitter) Record(ev *event.Event) (*kgo.Record, error) {
	if err := e.cfg.Policy.Validate(ev); err != nil {
		return nil, err
	}
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	ev.ReceivedAt = e.now().UTC()
	value, err := event.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
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

// ErrClosed is returned by Emit after Close.
var ErrClosed = errors.New("emitter closed")

// Emit validates ev and publishes it, returning once the broker acknowledged
// it (nil), or the validation error (*event.ValidationError), or the
// delivery error. Cancelling ctx abandons the wait; the event may or may not
// have been delivered, and sending it again with the same id is safe.
func (e *Emitter) Emit(ctx context.Context, ev event.Event) error {
	r, err := e.Record(&ev)
	if err != nil {
		return err
	}
	if err := e.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		if errors.Is(err, kgo.ErrClientClosed) {
			return ErrClosed
		}
		return fmt.Errorf("publish event %s: %w", ev.ID, err)
	}
	return nil
}

// Ping checks that a broker answers.
func (e *Emitter) Ping(ctx context.Context) error { return e.cl.Ping(ctx) }

// Close flushes what is in flight and closes the client.
func (e *Emitter) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DeliveryTimeout)
	defer cancel()
	_ = e.cl.Flush(ctx)
	e.cl.Close()
}
