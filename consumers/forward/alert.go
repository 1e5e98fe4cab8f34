package forward

// Alert delivery: a chat message posted to the workspace's webhook for
// each event whose name the workspace chose, one event per attempt.

import (
	"context"
	"time"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// serveAlert makes one attempt to post the alert of the head item of t's
// queue. It returns the wait before a retry, or 0 once the item is finished
// (posted, skipped or dead-lettered).
func (f *Forwarder) serveAlert(ctx context.Context, t *target, it *item) time.Duration {
	ws := f.ws.Get(t.ws)
	name := header(it.rec, topics.HeaderEvent)
	skip := it.e.p.revoked.Load() || ws == nil || !ws.Alerts.Triggers(name)
	var text string
	var ev event.Event
	if !skip {
		var err error
		ev, err = event.Decode(it.rec.Value)
		switch {
		case err != nil:
			skip = true
		case f.resent(TargetAlert, ws.ID, ev.ID, ev.Timestamp.UnixNano()):
			// Already alerted, or another version of an id already
			// stored or finished (a resend of the event).
			f.m.dropped.WithLabelValues(dropDuplicate).Inc()
			skip = true
		default:
			it.id, it.ts = ev.ID, ev.Timestamp.UnixNano()
			skip = skipsSoftFailure(ws, &ev)
			text = AlertText(&ev)
		}
	}
	if skip {
		t.take(1)
		t.attempts = 0
		f.finishItems(t, nil, []*item{it})
		return 0
	}
	err := f.sender.SendAlert(ctx, ws.Alerts.WebhookURL, text)
	if err == nil {
		f.m.attempts.WithLabelValues(t.kind, "ok").Inc()
		f.m.alerts.Inc()
		f.m.ws.deliveredTo(t.ws, t.kind, []time.Duration{0})
		t.attempts = 0
		t.take(1)
		f.finishItems(t, []*item{it}, nil)
		return 0
	}
	if ctx.Err() != nil {
		return 0
	}
	retryIn, reason := f.settle(t, err)
	if retryIn > 0 {
		return retryIn
	}
	attempts := t.attempts
	t.attempts = 0
	t.take(1)
	f.deadLetter(ctx, TargetAlert, it, reason, attempts)
	f.finishItems(t, []*item{it}, nil)
	return 0
}
