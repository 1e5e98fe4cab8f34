package forward

// Resend suppression: which versions of an event id the forwarder
// delivers. It knows the first version of every id (loaded from the
// writer's registry when a partition is assigned, or finished here) and the
// ids delivered lately, and delivers neither another version nor a repeat.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// recentWindow is how many event ids per generation the forwarder
// remembers to suppress resends (two generations: up to twice this).
const recentWindow = 100_000

// loadFirsts loads the ids the writer registered for the assigned
// partitions ps within the window into firsts, before any of their records
// is read, and those it registered from other partitions for workspaces now
// keyed to the assigned ones (moved by a partition-count increase). The
// newest ids of each partition are loaded, an equal share of DedupeMaxIDs
// per partition. Loading is bounded by RegistryTimeout; a partition whose
// ids could not be loaded (ClickHouse down) is forwarded with what is
// remembered, with a warning and a count of the failure.
func (f *Forwarder) loadFirsts(ctx context.Context, cl *kgo.Client, ps []int32) {
	if f.deps.Registry == nil || len(ps) == 0 {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, f.cfg.RegistryTimeout)
	defer cancel()
	share := max(f.cfg.DedupeMaxIDs/len(ps), 1)
	since := func() time.Time { return f.now().Add(-idwindow.RegistrySpan(f.cfg.RetentionDays)) }
	loaded := 0
	for _, p := range ps {
		now := f.now()
		ids, err := f.loadRegistered(ctx, p, func() ([]idwindow.StoredID, error) {
			return f.deps.Registry.Recent(ctx, f.cfg.Topic, p, since(), share)
		})
		if err != nil {
			f.m.registryErrors.Inc()
			f.log.Warn("registered ids not loaded; resends of ids stored before may be forwarded", "partition", p, "err", err)
			continue
		}
		f.firsts.Add(now, ids)
		loaded += len(ids)
	}
	now := f.now()
	ids, err := f.loadRegistered(ctx, -1, func() ([]idwindow.StoredID, error) {
		n, err := idwindow.PartitionCount(ctx, cl, f.cfg.Topic)
		if err != nil {
			return nil, err
		}
		return f.deps.Registry.Moved(ctx, f.cfg.Topic, n, ps, since(), share)
	})
	if err != nil {
		f.m.registryErrors.Inc()
		f.log.Warn("moved workspaces' registered ids not loaded; resends of ids they stored on other partitions may be forwarded", "err", err)
	} else {
		f.firsts.Add(now, ids)
		loaded += len(ids)
	}
	f.log.Info("registered ids loaded", "partitions", len(ps), "ids", loaded, "moved", len(ids), "remembered", f.firsts.Size())
	f.assignGate(parent, cl, ps) // with a time limit of its own
}

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
