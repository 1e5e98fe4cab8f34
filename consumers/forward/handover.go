package forward

// After a partition-count increase, a moved workspace's records wait on
// its new partition until its old partition is forwarded and stored
// (consumers/handover): its events are delivered in order, and a resend
// whose first copy was on the old partition is recognised.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

// poll polls and passes the records through the gate.
func (f *Forwarder) poll(ctx context.Context) (kgo.Fetches, []*kgo.Record) {
	if f.gate == nil {
		fetches := f.cl.PollRecords(ctx, f.pollRecords())
		fetches.EachPartition(f.m.observeLag)
		return fetches, fetches.Records()
	}
	fetches, res, err := f.gate.Poll(ctx, f.cl, f.pollRecords())
	fetches.EachPartition(f.m.observeLag)
	if err != nil && ctx.Err() == nil {
		f.log.Warn("handover: offsets not read; holding", "err", err)
	}
	f.applyGate(ctx, res)
	return fetches, res.Ready
}

// applyGate makes the gate one more holder of the partitions it holds
// (see syncFetch), and remembers the released workspaces' ids stored from
// their old partitions before their records are dispatched.
func (f *Forwarder) applyGate(ctx context.Context, res handover.Result) {
	hold := func(ids []int32, by int) {
		for _, id := range ids {
			p := f.partition(id)
			p.mu.Lock()
			p.holds += by
			p.mu.Unlock()
			f.syncFetch(p)
		}
	}
	hold(res.Pause, 1)
	if len(res.Loads) > 0 {
		lctx, cancel := context.WithTimeout(ctx, f.cfg.RegistryTimeout)
		defer cancel()
		since := f.now().Add(-idwindow.RegistrySpan(f.cfg.RetentionDays))
		for _, l := range res.Loads {
			now := f.now()
			ids, err := f.loadRegistered(lctx, l.Partition, func() ([]idwindow.StoredID, error) {
				return f.deps.Registry.MovedFrom(lctx, f.cfg.Topic, l.Partition, l.Workspaces, since, f.cfg.DedupeMaxIDs)
			})
			if err != nil {
				f.m.registryErrors.Inc()
				f.log.Warn("moved workspaces' registered ids not loaded; resends of ids they stored on their old partition may be forwarded",
					"partition", l.Partition, "err", err)
				continue
			}
			f.firsts.Add(now, ids)
			// Both groups are past these ids on their old partition: the
			// forwarder finished them there, so an identical resend is not
			// delivered again either.
			for _, id := range ids {
				f.recent.add(TargetSource, id.WorkspaceID, id.ID)
				f.recent.add(TargetAlert, id.WorkspaceID, id.ID)
			}
		}
	}
	if len(res.TimedOut) > 0 {
		f.log.Warn("handover: partitions went on before their moved workspaces' old partitions were forwarded and stored",
			"partitions", res.TimedOut, "max_hold", handover.DefaultMaxHold)
	}
	hold(res.Resume, -1)
}

// assignGate gives the gate the topic's partition count and its earlier
// counts for the assigned partitions ps, trying for up to RegistryTimeout.
// When they cannot be read, the gate keeps the counts it knew (none on a
// first assignment: then nothing is handed over, with a warning).
func (f *Forwarder) assignGate(ctx context.Context, cl *kgo.Client, ps []int32) {
	if f.gate == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.RegistryTimeout)
	defer cancel()
	now := f.now()
	var (
		counts  []idwindow.Count
		current int
	)
	_, err := f.loadRegistered(ctx, -1, func() ([]idwindow.StoredID, error) {
		n, err := idwindow.PartitionCount(ctx, cl, f.cfg.Topic)
		if err == nil {
			counts, err = f.deps.Registry.PartitionCounts(ctx, f.cfg.Topic, n, now)
			current = n
		}
		return nil, err
	})
	if err != nil {
		f.m.registryErrors.Inc()
		f.log.Warn("partition counts not read; the handover goes on with the counts known before", "err", err)
		current = 0
	}
	f.gate.Assign(ps, current, handover.Older(counts, current, now, handover.Window))
}
