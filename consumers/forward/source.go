package forward

// Delivery to a workspace's source (the event-streams target).
//
// A request the target refuses for its content (400 and the other final
// 4xx statuses, see DeliveryError.TargetRefused for the exceptions) is
// split in halves, each half retried, until the refused events are alone:
// those are dead-lettered and the rest is delivered. A split makes at most
// Config.MaxSplitRequests requests; what is not isolated by then is
// dead-lettered as one rejected batch. A request refused whatever its
// content (a wrong write key or address) is never split: the workspace's
// delivery pauses, keeping its events, and resumes when the target
// accepts them or the workspace's settings change.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/schemas/event"
)

// split is a target's progress isolating the events its source rejected:
// segs are the sizes (in queue items from the head) of the parts still to
// send, in order; requests counts the requests the split made.
type split struct {
	segs     []int
	requests int
}

// halve replaces the head segment, of which n items were sent and
// rejected, by its two halves.
func (s *split) halve(n int) {
	h := []int{(n + 1) / 2, n / 2}
	if len(s.segs) == 0 {
		s.segs = h
		return
	}
	s.segs = append(h, s.segs[1:]...)
}

// consumed records that the first n items of the head segment left the
// queue.
func (s *split) consumed(n int) {
	if len(s.segs) == 0 {
		return
	}
	s.segs[0] -= n
	if s.segs[0] <= 0 {
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 {
		s.segs, s.requests = nil, 0
	}
}

// batch is one request's worth of a target's queue head: n items consumed,
// of which send are sent (calls) and finished need no delivery.
type batch struct {
	calls    [][]byte
	send     []*item
	finished []*item
	n        int
}

func (f *Forwarder) serveSource(ctx context.Context, t *target, head []*item) time.Duration {
	ws := f.ws.Get(t.ws)
	if ws == nil || !ws.Forwarding.Enabled {
		// Turned off while queued: nothing to deliver.
		t.take(len(head))
		f.m.dropped.WithLabelValues(dropDisabled).Add(float64(len(head)))
		f.finishItems(t, nil, head)
		t.attempts, t.split = 0, split{}
		f.resume(t, "forwarding turned off")
		return 0
	}
	if !ws.Ready() {
		// The tracking plan or filters are still being compiled for the
		// first time: nothing to apply yet. Only this workspace waits.
		f.wakeable(t)
		return f.cfg.RetryMin
	}
	b := f.batch(ctx, t, ws, head)
	if len(b.send) == 0 {
		t.take(b.n)
		f.finishItems(t, nil, b.finished)
		return 0
	}
	splitting := len(t.segs) > 0
	if splitting {
		t.requests++
		f.m.splitRequests.Inc()
	}
	err := f.sender.SendBatch(ctx, ws.Forwarding.Target, b.calls)
	if err == nil {
		f.delivered(t, ws, b)
		return 0
	}
	if ctx.Err() != nil {
		return 0
	}
	return f.sourceFailed(ctx, t, ws, b, err)
}

// batch runs the head items through the workspace's pipeline (once per
// item) and gathers the calls of one request.
func (f *Forwarder) batch(ctx context.Context, t *target, ws *Workspace, head []*item) batch {
	var b batch
	size := 64
	inBatch := map[string]bool{}
	for _, it := range head {
		if it.e.p.revoked.Load() {
			b.finished = append(b.finished, it)
			b.n++
			continue
		}
		fresh := !it.done
		if fresh {
			// process checked resent just now.
			f.process(ctx, ws, it)
		}
		if it.call != nil && (inBatch[it.id] || (!fresh && f.resent(TargetSource, ws.ID, it.id, it.ts))) {
			// The same id again (a resend) in this batch, or delivered
			// since this item was processed in an earlier attempt (or
			// another version of it).
			it.call = nil
			f.m.dropped.WithLabelValues(dropDuplicate).Inc()
		}
		if it.call == nil {
			b.finished = append(b.finished, it)
			b.n++
			continue
		}
		if len(b.send) > 0 && size+len(it.call)+1 > MaxRequestBytes {
			break
		}
		inBatch[it.id] = true
		size += len(it.call) + 1
		b.calls = append(b.calls, it.call)
		b.send = append(b.send, it)
		b.n++
	}
	return b
}

// process runs one item through the workspace's pipeline, leaving it.call
// nil when the event is dropped or dead-lettered.
func (f *Forwarder) process(ctx context.Context, ws *Workspace, it *item) {
	it.done = true
	ev, changes, err := event.DecodeStored(it.rec.Value)
	if err != nil {
		// Poison is the writer's to dead-letter; nothing to forward.
		f.m.dropped.WithLabelValues("undecodable").Inc()
		return
	}
	it.id, it.ts = ev.ID, ev.Timestamp.UnixNano()
	if f.resent(TargetSource, ws.ID, it.id, it.ts) {
		f.m.dropped.WithLabelValues(dropDuplicate).Inc()
		return
	}
	out, err := processStored(ws, &ev, changes)
	if out.FilterErrors > 0 {
		f.m.filterErrs.Add(float64(out.FilterErrors))
	}
	if len(out.Violations) > 0 {
		f.m.violations.Inc()
		f.viol.add(ws.ID, ev.Event, ev.ID, out.Violations)
	}
	if err != nil {
		f.deadLetter(ctx, TargetSource, it, "too_large: "+err.Error(), 0)
		f.recent.add(TargetSource, ws.ID, ev.ID)
		f.remember(ws.ID, it)
		return
	}
	if out.Dropped != "" {
		// Dropped by the workspace's rules: this version is the one the
		// API shows, so another version of the id is not delivered either.
		f.m.dropped.WithLabelValues(out.Dropped).Inc()
		f.remember(ws.ID, it)
		return
	}
	it.call = out.Call
}

// delivered finishes a batch the target accepted.
func (f *Forwarder) delivered(t *target, ws *Workspace, b batch) {
	f.m.attempts.WithLabelValues(t.kind, "ok").Inc()
	t.attempts = 0
	f.resume(t, "target accepted a batch")
	t.take(b.n)
	now := f.now()
	took := make([]time.Duration, len(b.send))
	for i, it := range b.send {
		d := now.Sub(it.readAt)
		took[i] = d
		f.m.latency.Observe(d.Seconds())
		if f.deps.OnDelivered != nil {
			f.deps.OnDelivered(d)
		}
	}
	f.m.ws.deliveredTo(t.ws, t.kind, took)
	f.m.forwarded.Add(float64(len(b.send)))
	f.finishItems(t, b.send, b.finished)
}

// sourceFailed decides what a failed request means: a pause (refused
// whatever its content), a split (rejected, several events), a retry after
// a backoff (returned), or dead letters for the batch.
func (f *Forwarder) sourceFailed(ctx context.Context, t *target, ws *Workspace, b batch, err error) time.Duration {
	var de *DeliveryError
	if !errors.As(err, &de) {
		de = &DeliveryError{Retryable: true, Err: err}
	}
	switch {
	case de.TargetRefused():
		f.dropFinished(t, b.finished)
		return f.pause(ctx, t, ws, de)
	case !de.Retryable && len(b.send) > 1 && t.requests < f.cfg.MaxSplitRequests:
		// Items finished here leave the queue: the sent ones are then
		// exactly its first len(b.send) items, which the halves cover.
		f.m.attempts.WithLabelValues(t.kind, "rejected").Inc()
		f.m.ws.failedFor(t.ws, t.kind, "rejected")
		f.dropFinished(t, b.finished)
		t.halve(len(b.send))
		t.attempts = 0
		f.log.Debug("batch rejected; splitting it", "workspace_id", t.ws, "events", len(b.send), "status", de.Status)
		return 0
	}
	retryIn, reason := f.settle(t, err)
	if retryIn > 0 {
		f.log.Debug("delivery failed; will retry", "workspace_id", t.ws, "events", len(b.send), "attempt", t.attempts, "in", retryIn, "err", err)
		// Items finished here (dropped by configuration, or of a revoked
		// partition) leave the queue now; the batch stays at its head. Any
		// other item, also one revoked meanwhile, stays until a later serve
		// finishes it: an item leaves the queue only when it is finished.
		f.dropFinished(t, b.finished)
		return retryIn
	}
	if !de.Retryable && len(b.send) > 1 {
		reason += fmt.Sprintf(" (%d events not isolated: the split made its %d requests)", len(b.send), f.cfg.MaxSplitRequests)
	}
	attempts := t.attempts
	t.attempts = 0
	f.log.Warn("delivery failed; dead-lettering", "workspace_id", t.ws, "events", len(b.send), "attempts", attempts, "err", err)
	t.take(b.n)
	for _, it := range b.send {
		f.deadLetter(ctx, TargetSource, it, reason, attempts)
	}
	f.finishItems(t, b.send, b.finished)
	return 0
}

// dropFinished removes finished items from t's queue and finishes them.
func (f *Forwarder) dropFinished(t *target, finished []*item) {
	if len(finished) == 0 {
		return
	}
	gone := make(map[*item]bool, len(finished))
	for _, it := range finished {
		gone[it] = true
	}
	t.mu.Lock()
	keep := make([]*item, 0, len(t.items))
	for _, it := range t.items {
		if !gone[it] {
			keep = append(keep, it)
		}
	}
	t.items = keep
	t.mu.Unlock()
	f.finishItems(t, nil, finished)
}

// pause keeps the workspace's events while its target refuses them
// whatever their content, and retries with a backoff up to RetryMax; a
// settings change of the workspace retries at once. The first refusal of
// a pause is logged, counted and posted to the workspace's alert webhook.
func (f *Forwarder) pause(ctx context.Context, t *target, ws *Workspace, de *DeliveryError) time.Duration {
	f.m.attempts.WithLabelValues(t.kind, "refused").Inc()
	f.m.ws.failedFor(t.ws, t.kind, "refused")
	t.pauses++
	if !t.paused {
		t.paused = true
		f.m.paused.Inc()
		f.log.Warn("target refused the request whatever its content; delivery of the workspace paused, its events kept",
			"workspace_id", t.ws, "status", de.Status)
		f.alertPaused(ctx, ws, de.Status)
	}
	f.wakeable(t)
	return f.backoff(t.pauses)
}

// resume ends t's pause, if any.
func (f *Forwarder) resume(t *target, why string) {
	t.pauses = 0
	if !t.paused {
		return
	}
	t.paused = false
	f.m.paused.Dec()
	f.log.Info("delivery of the workspace resumed", "workspace_id", t.ws, "why", why)
}

func (f *Forwarder) wakeable(t *target) {
	t.mu.Lock()
	t.wakeable = true
	t.mu.Unlock()
}

// PausedText is the alert posted when a workspace's delivery pauses. It
// names the status only: the target's answer is never echoed.
func PausedText(ws string, status int) string {
	why := "refused the forwarder's write key"
	if status == 404 || status == 410 {
		why = "does not exist at the configured URL"
	}
	return fmt.Sprintf("*Audit forwarding paused* in workspace %s\n"+
		"The forwarding target %s (HTTP %d). No event is dropped: they are kept and delivered "+
		"once the target accepts them or the forwarding settings change.", ws, why, status)
}

// alertPaused posts PausedText to the workspace's alert webhook, once; a
// failure is logged.
func (f *Forwarder) alertPaused(ctx context.Context, ws *Workspace, status int) {
	if !ws.Alerts.Enabled || ws.Alerts.WebhookURL == "" {
		return
	}
	if err := f.sender.SendAlert(ctx, ws.Alerts.WebhookURL, PausedText(ws.ID, status)); err != nil {
		f.log.Warn("pause alert not posted", "workspace_id", ws.ID, "err", err)
		return
	}
	f.m.alerts.Inc()
}

// settingsChanged retries at once a target of the workspace that waits for
// a retry a settings change may help (paused, or settings compiling). An
// attempt under way counts the change and, when it fails so, retries at
// once instead of waiting (serve).
func (f *Forwarder) settingsChanged(id string) {
	f.tmu.Lock()
	t := f.targets[TargetSource+"\x00"+id]
	f.tmu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.changes++
	wake := t.wakeable && t.timer != nil && t.timer.Stop()
	if wake {
		t.wakeable = false
		t.pauses = 0
	}
	t.mu.Unlock()
	if wake {
		f.sched.push(t)
	}
}
