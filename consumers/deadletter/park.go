package deadletter

// Recording: a record that cannot be handled is parked in a dead-letter
// topic, with headers naming the reason and its source position.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/backoff"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Parker parks records in one dead-letter topic. It is safe for concurrent
// use.
type Parker struct {
	cl    *kgo.Client
	topic string
	retry backoff.Policy
	log   *slog.Logger
}

// NewParker returns a Parker publishing to topic through cl, retrying
// failed publishes with the retry backoff and logging them on log.
func NewParker(cl *kgo.Client, topic string, retry backoff.Policy, log *slog.Logger) *Parker {
	return &Parker{cl: cl, topic: topic, retry: retry, log: log}
}

// Park publishes the dead letter of r and waits for the acknowledgement,
// retrying until it succeeds or ctx ends, so that r's offset can be
// committed once it returns nil. The letter has r's key, value and
// headers, then dlq_reason (reason, at most MaxReason bytes), the extra
// headers and r's topic, partition and offset. When ctx ends first, Park
// returns an error wrapping ctx.Err().
func (p *Parker) Park(ctx context.Context, r *kgo.Record, why string, extra ...kgo.RecordHeader) error {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+len(extra)+4)
	headers = append(append(headers, r.Headers...), kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: reason(why)})
	headers = append(append(headers, extra...),
		kgo.RecordHeader{Key: topics.HeaderDLQTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: topics.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: topics.HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))})
	dl := kgo.Record{Topic: p.topic, Key: r.Key, Value: r.Value, Headers: headers}
	err := p.retry.Retry(ctx, func() error {
		rec := dl // a record may be produced only once at a time
		return p.cl.ProduceSync(ctx, &rec).FirstErr()
	}, func(_ int, err error, wait time.Duration) {
		if ctx.Err() == nil {
			p.log.Error("dead-letter publish failed; retrying", "err", err, "backoff", wait)
		}
	})
	if err != nil {
		return fmt.Errorf("dead-letter %s/%d/%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return nil
}

// Requeue appends a copy of the dead letter r to the dead-letter topic,
// with reason why instead of its reason and dlq_replays counting one more
// replay, and waits for the acknowledgement. It tries once: a replay that
// cannot requeue stops, and the letter is replayed again next time.
func (p *Parker) Requeue(ctx context.Context, r *kgo.Record, why string) error {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
	replays := 0
	for _, h := range r.Headers {
		switch h.Key {
		case topics.HeaderDLQReason:
			continue
		case HeaderReplays:
			replays, _ = strconv.Atoi(string(h.Value))
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: reason(why)},
		kgo.RecordHeader{Key: HeaderReplays, Value: []byte(strconv.Itoa(replays + 1))})
	cp := &kgo.Record{Topic: p.topic, Key: r.Key, Value: r.Value, Headers: hs}
	if err := p.cl.ProduceSync(ctx, cp).FirstErr(); err != nil {
		return fmt.Errorf("requeue dead letter: %w", err)
	}
	return nil
}
