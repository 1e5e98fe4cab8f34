package writer

// After a partition-count increase, a moved workspace's records wait on
// its new partition until its old partition is stored (consumers/handover),
// so that a resend whose first copy was on the old partition is recognised.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

// polledRecords is one poll: its fetches and the records to process now.
type polledRecords struct {
	fetches kgo.Fetches
	recs    []*kgo.Record
}

// pollPassed polls and passes the records through the gate: the records it
// holds are kept back, the ones it releases come along.
func (w *Writer) pollPassed(ctx context.Context) (kgo.Fetches, []*kgo.Record) {
	if w.gate == nil {
		fetches := w.cl.PollRecords(ctx, w.cfg.BatchSize)
		return fetches, fetches.Records()
	}
	fetches, res, err := w.gate.Poll(ctx, w.cl, w.cfg.BatchSize)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("handover: offsets not read; holding", "err", err)
	}
	w.applyGate(ctx, res)
	return fetches, res.Ready
}

// applyGate pauses and resumes what the gate decided and loads the
// released workspaces' ids before their records are processed.
func (w *Writer) applyGate(ctx context.Context, res handover.Result) {
	if len(res.Pause) > 0 {
		w.cl.PauseFetchPartitions(map[string][]int32{w.cfg.Topic: res.Pause})
	}
	for _, l := range res.Loads {
		w.load(ctx, "load moved workspaces' ids", l.Partition, func(since time.Time) ([]idwindow.StoredID, error) {
			return w.sink.MovedFrom(ctx, w.cfg.Topic, l.Partition, l.Workspaces, since, w.cfg.DedupeMaxIDs)
		})
	}
	if len(res.TimedOut) > 0 {
		w.log.Warn("handover: partitions went on before their moved workspaces' old partitions were stored",
			"partitions", res.TimedOut, "max_hold", handover.DefaultMaxHold)
	}
	if len(res.Resume) > 0 {
		w.cl.ResumeFetchPartitions(map[string][]int32{w.cfg.Topic: res.Resume})
	}
}
