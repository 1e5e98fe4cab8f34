package forward

// Dead letters: a record the forwarder gives up on is parked in the
// forwarding dead-letter topic, with headers naming the reason, the target
// kind, the attempts and the record's source position.

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/topics"
)

// deadLetter publishes the item's original record to the forwarding
// dead-letter topic and waits for the acknowledgement, retrying until it
// succeeds or ctx ends (then the record is not marked and is read again).
func (f *Forwarder) deadLetter(ctx context.Context, kind string, it *item, reason string, attempts int) {
	r := it.rec
	dl := &kgo.Record{
		Topic: f.cfg.DeadLetterTopic,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader{}, r.Headers...),
			kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: []byte(truncate(reason, 1024))},
			kgo.RecordHeader{Key: topics.HeaderForwardTarget, Value: []byte(kind)},
			kgo.RecordHeader{Key: topics.HeaderDLQAttempts, Value: []byte(strconv.Itoa(attempts))},
			kgo.RecordHeader{Key: topics.HeaderDLQTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: topics.HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: topics.HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		),
	}
	backoff := f.cfg.RetryMin
	for {
		err := f.cl.ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			label, _, _ := cut(reason, ':')
			f.m.deadLetters.WithLabelValues(kind, label).Inc()
			return
		}
		if ctx.Err() != nil {
			// Not parked: keep the record unmarked by holding its entry.
			it.e.p.mu.Lock()
			it.e.pending++
			it.e.p.mu.Unlock()
			return
		}
		f.log.Error("dead-letter publish failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.cfg.RetryMax)
	}
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
