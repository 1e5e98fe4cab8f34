package forward

// Partition assignment changes: the registry's ids are loaded for assigned
// partitions before their records are read; revoked and lost partitions
// are forgotten so that none of their records is marked after they moved.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// onAssigned loads the ids the writer registered for the assigned
// partitions within the window into firsts, before any of their records is
// read, and those it registered from other partitions for workspaces now
// keyed to the assigned ones (moved by a partition-count increase). The
// newest ids of each partition are loaded, an equal share of DedupeMaxIDs
// per partition. Loading is bounded by RegistryTimeout; a partition whose
// ids could not be loaded (ClickHouse down) is forwarded with what is
// remembered, with a warning and a count of the failure.
func (f *Forwarder) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	ps := assigned[f.cfg.Topic]
	if f.deps.Registry == nil || len(ps) == 0 {
		return
	}
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
}

// onRevoked stops marking the revoked partitions (their queued deliveries
// are skipped) and commits what was marked before they move.
func (f *Forwarder) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	f.forget(revoked)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		f.log.Warn("commit on revoke failed; records will be forwarded again", "err", err)
	}
}

// onLost forgets the partitions without committing.
func (f *Forwarder) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	f.forget(lost)
}

func (f *Forwarder) forget(m map[string][]int32) {
	f.pmu.Lock()
	var gone []*partition
	for _, id := range m[f.cfg.Topic] {
		if p := f.parts[id]; p != nil {
			p.mu.Lock() // no mark of p after this
			p.revoked.Store(true)
			p.mu.Unlock()
			gone = append(gone, p)
			delete(f.parts, id)
		}
	}
	f.pmu.Unlock()
	for _, p := range gone {
		f.syncFetch(p)
	}
}
