package forward

// Dead letters: a record the forwarder gives up on is parked in the
// forwarding dead-letter topic (package deadletter), with headers naming
// the reason, the target kind, the attempts and the record's source
// position.

import (
	"context"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
	"github.com/audittrail/audittrail/schemas/topics"
)

// deadLetter parks the item's original record in the forwarding
// dead-letter topic and waits for the acknowledgement, retrying until it
// succeeds or ctx ends (then the record is not marked and is read again).
func (f *Forwarder) deadLetter(ctx context.Context, kind string, it *item, reason string, attempts int) {
	p := deadletter.NewParker(f.cl, f.cfg.DeadLetterTopic, f.retries(), f.log)
	err := p.Park(ctx, it.rec, reason,
		kgo.RecordHeader{Key: topics.HeaderForwardTarget, Value: []byte(kind)},
		kgo.RecordHeader{Key: topics.HeaderDLQAttempts, Value: []byte(strconv.Itoa(attempts))})
	if err != nil {
		// Not parked: keep the record unmarked by holding its entry.
		it.e.p.mu.Lock()
		it.e.pending++
		it.e.p.mu.Unlock()
		return
	}
	label, _, _ := strings.Cut(reason, ":")
	f.m.deadLetters.WithLabelValues(kind, label).Inc()
	f.m.ws.failedFor(string(it.rec.Key), kind, "dead_letter") // records are keyed by workspace
}
