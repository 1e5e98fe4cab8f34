package writer

// The arrival check under per-workspace retention: an event is stored
// when its workspace's policy keeps it, so a backfill or a consumer lag
// past the deployment's window loses nothing that a longer window or a
// legal hold keeps, and an event already past a shorter window is not
// stored only to be deleted.

import (
	"context"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// Policies returns a workspace's retention policy (a
// *retentionpolicy.Cache). It is called only for events more than a day
// old (the shortest window), from several goroutines at once.
type Policies interface {
	For(ctx context.Context, workspace string) (retentionpolicy.Policy, error)
}

// KeepBy makes the writer store an event when its workspace's policy in p
// keeps it, and skip it (counted as expired) when not; without it (the
// default) an event older than the deployment's window is skipped and
// every other stored. It returns w and must be called before Run.
func (w *Writer) KeepBy(p Policies) *Writer {
	w.policies = p
	return w
}

// keeps reports whether ws's policy keeps an event of time ts at now.
// When the policies cannot be read, the event is kept: the retention job,
// which reads them afresh, archives and deletes it if it expired, whereas
// an event skipped here is lost.
func (w *Writer) keeps(ctx context.Context, ws string, ts, now time.Time) bool {
	if w.policies == nil {
		return false
	}
	p, err := w.policies.For(ctx, ws)
	if err != nil {
		w.log.Warn("retention policies unreadable; storing an event older than the window for the retention job to judge", "workspace", ws, "err", err)
		return true
	}
	return p.Keeps(ts, now)
}
