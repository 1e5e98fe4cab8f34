package writer

// Dead letters: a record that cannot be stored is parked in the
// dead-letter topic (package deadletter), with headers naming the reason
// and its source position, before its offset is committed.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
)

// deadLetter parks r in the dead-letter topic and waits for the ack,
// retrying until it succeeds or ctx ends: a poison record's offset is
// committed only once it is safely parked.
func (w *Writer) deadLetter(ctx context.Context, r *kgo.Record, reason string, cause error) error {
	msg := cause.Error()
	p := deadletter.NewParker(w.cl, w.cfg.DeadLetterTopic, w.retries(), w.log)
	if err := p.Park(ctx, r, reason+": "+msg); err != nil {
		return err
	}
	w.m.deadLetters.WithLabelValues(reason).Inc()
	w.log.Warn("record dead-lettered", "reason", reason, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", msg)
	return nil
}
