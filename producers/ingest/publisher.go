package ingest

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/producers/emitter"
)

// KafkaPublisher publishes with a franz-go client configured for
// acks=all and idempotence (franz-go's defaults, set explicitly here).
type KafkaPublisher struct{ cl *kgo.Client }

// ProducerOptions are the options the gateway's Kafka client adds to the
// shared broker options: the emitter's murmur2 key partitioner (so the
// gateway and the library put a workspace on the same partition) and its
// MetadataMaxAge, acks=all,
// idempotence (franz-go's default), compression and a short linger.
func ProducerOptions() []kgo.Opt {
	return []kgo.Opt{
		kgo.RecordPartitioner(emitter.Partitioner()),
		kgo.MetadataMaxAge(emitter.MetadataMaxAge),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RecordDeliveryTimeout(publishWait),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}
}

// NewKafkaPublisher wraps cl.
func NewKafkaPublisher(cl *kgo.Client) *KafkaPublisher { return &KafkaPublisher{cl: cl} }

// Publish produces recs and waits for every acknowledgement.
func (p *KafkaPublisher) Publish(ctx context.Context, recs []*kgo.Record) error {
	return p.cl.ProduceSync(ctx, recs...).FirstErr()
}
