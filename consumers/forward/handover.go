package forward

// After a partition-count increase, a moved workspace's records wait on
// its new partition until its old partition is forwarded and stored
// (consumers/handover): its events are delivered in order, and a resend
// whose first copy was on the old partition is recognised.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

// holdPoll bounds a poll while the gate holds a partition, so that a
// release does not wait for new records.
const holdPoll = 100 * time.Millisecond

// poll polls and passes the records through the gate.
func (f *Forwarder) poll(ctx context.Context) (kgo.Fetches, []*kgo.Record) {
	if f.gate == nil {
		fetches := f.cl.PollRecords(ctx, f.pollRecords())
		return fetches, fetches.Records()
	}
	pctx := ctx
	if f.gate.Holding() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, holdPoll)
		defer cancel()
	}
	fetches := f.cl.PollRecords(pctx, f.pollRecords())
	res, err := f.gate.Pass(ctx, fetches.Records())
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
		}
	}
	if len(res.TimedOut) > 0 {
		f.log.Warn("handover: partitions went on before their moved workspaces' old partitions were forwarded and stored",
			"partitions", res.TimedOut, "max_hold", handover.DefaultMaxHold)
	}
	hold(res.Resume, -1)
}

// assignGate gives the gate the topic's earlier partition counts for the
// assigned partitions ps (none when they cannot be read: nothing is held).
func (f *Forwarder) assignGate(ctx context.Context, cl *kgo.Client, ps []int32) {
	if f.gate == nil {
		return
	}
	now := f.now()
	var counts []idwindow.Count
	_, err := f.loadRegistered(ctx, -1, func() ([]idwindow.StoredID, error) {
		n, err := idwindow.PartitionCount(ctx, cl, f.cfg.Topic)
		if err == nil {
			counts, err = f.deps.Registry.PartitionCounts(ctx, f.cfg.Topic, n, now)
		}
		return nil, err
	})
	if err != nil || len(counts) == 0 {
		f.m.registryErrors.Inc()
		f.log.Warn("partition counts not read; a partition-count increase is not handed over", "err", err)
		f.gate.Assign(ps, 0, nil)
		return
	}
	current := counts[len(counts)-1].Partitions
	f.gate.Assign(ps, current, handover.Older(counts, current, now, handover.Window))
}
