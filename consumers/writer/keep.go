package writer

// The arrival check under per-workspace retention: an event older than
// the deployment's window is stored when its workspace's policy keeps it,
// so a backfill or a consumer lag past the window loses nothing that a
// longer window or a legal hold keeps. Events inside the deployment's
// window are stored as before, also past a shorter window (the retention
// job archives them before it deletes them).

import (
	"context"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// Policies returns a workspace's retention policy (a
// *retentionpolicy.Cache). It is called only for events older than the
// deployment's window, from several goroutines at once.
type Policies interface {
	For(ctx context.Context, workspace string) (retentionpolicy.Policy, error)
}

// KeepBy makes the writer store an event older than the deployment's
// window when its workspace's policy in p keeps it; without it (the
// default) every such event is skipped (counted as expired). It returns w
// and must be called before Run.
func (w *Writer) KeepBy(p Policies) *Writer {
	w.policies = p
	return w
}

// keeps reports whether ws's policy keeps an event of time ts at now.
// When the policies cannot be read (a bounded Cache fails once its copy
// is too old), the event is kept: the retention job,
// which reads them afresh, archives and deletes it if it expired, whereas
// an event skipped here is lost.
func (w *Writer) keeps(ctx context.Context, ws string, ts, now time.Time) bool {
	if w.policies == nil {
		return false
	}
	// A read of the policies (at most one at a time, see main) never
	// stalls consumption for long.
	ctx, cancel := context.WithTimeout(ctx, policyReadTimeout)
	defer cancel()
	p, err := w.policies.For(ctx, ws)
	if err != nil {
		if last := w.policyWarned.Load(); now.Unix()-last >= 60 && w.policyWarned.CompareAndSwap(last, now.Unix()) {
			w.log.Warn("retention policies unreadable; storing events older than the window for the retention job to judge (logged once a minute)", "workspace", ws, "err", err)
		}
		return true
	}
	return p.Keeps(ts, now)
}

// policyReadTimeout bounds a read of the policies for the arrival check.
const policyReadTimeout = 5 * time.Second

// storesOnArrival is the arrival check: whether an event of ws with time
// ts arriving at now is stored (else it is counted as expired): inside the
// deployment's window always, past it when ws's policy keeps it.
func (w *Writer) storesOnArrival(ctx context.Context, ws string, ts, now time.Time) bool {
	cutoff := now.Add(-time.Duration(w.cfg.RetentionDays) * 24 * time.Hour)
	return !ts.Before(cutoff) || (w.policies != nil && w.keeps(ctx, ws, ts, now))
}
