package writer

// Dead letters: a record that cannot be stored is parked in the
// dead-letter topic, with headers naming the reason and its source position,
// before its offset is committed.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/topics"
)

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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
