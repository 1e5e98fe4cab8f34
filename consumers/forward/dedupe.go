package forward

// Resend suppression: which versions of an event id the forwarder
// delivers. It knows the first version of every id (loaded from the
// writer's registry when a partition is assigned, or finished here) and the
// ids delivered lately, and delivers neither another version nor a repeat.

import (
	"context"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// recentWindow is how many event ids per generation the forwarder
// remembers to suppress resends (two generations: up to twice this).
const recentWindow = 100_000

// loadRegistered reads registered ids (of partition p, or -1: of moved
// workspaces), retrying with backoff until it succeeds or ctx ends.
func (f *Forwarder) loadRegistered(ctx context.Context, p int32, read func() ([]idwindow.StoredID, error)) ([]idwindow.StoredID, error) {
	backoff := f.cfg.RetryMin
	for {
		ids, err := read()
		if err == nil {
			return ids, nil
		}
		f.log.Debug("loading registered ids failed; will retry", "partition", p, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("load registered ids: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.cfg.RetryMax)
	}
}

// resent reports whether an event of workspace ws is a resend not to
// deliver to a target kind: its id was delivered or dead-lettered to that
// kind lately (whatever the timestamp), or its id's first version, loaded
// from the registry or finished here, has another timestamp (the first
// version stays, as in the API). An id known with the same timestamp is
// that first version or a replay of it: delivered (the messageId is
// stable).
func (f *Forwarder) resent(kind, ws, id string, ts int64) bool {
	if f.recent.seen(kind, ws, id) {
		return true
	}
	first, ok := f.firsts.Lookup(idwindow.KeyOf(ws, id))
	return ok && first != ts
}

// remember records events finished for good (delivered, dead-lettered or
// dropped by the workspace's rules) as the first versions of their ids.
func (f *Forwarder) remember(ws string, its ...*item) {
	now := f.now()
	ids := make([]idwindow.StoredID, 0, len(its))
	for _, it := range its {
		if it.id != "" {
			ids = append(ids, idwindow.StoredID{WorkspaceID: ws, ID: it.id, TimestampNs: it.ts, StoredAt: now})
		}
	}
	f.firsts.Add(now, ids)
}
