package writer

// Partition assignment changes: the idempotency window is loaded for
// assigned partitions and the handover gate told the earlier partition
// counts; on revoke the buffer is flushed and committed, on loss it is
// dropped without committing, and in both cases held records are dropped.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

// onAssigned counts the partitions this instance owns and loads into the
// idempotency window the ids recently stored from them, and those stored
// from other partitions by workspaces now keyed to them (moved there by a
// partition-count increase), before any of their records is read (a
// previous owner registered every id it stored before its offsets were
// committed).
func (w *Writer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	for topic, ps := range assigned {
		w.m.assigned.Add(float64(len(ps)))
		if w.ids == nil {
			continue
		}
		for _, p := range ps {
			w.load(ctx, "load recent ids", p, func(since time.Time) ([]idwindow.StoredID, error) {
				return w.sink.Recent(ctx, topic, p, since, w.cfg.DedupeMaxIDs)
			})
		}
		var (
			counts  []idwindow.Count
			current int
		)
		now := w.now()
		w.load(ctx, "load moved workspaces' ids", -1, func(since time.Time) ([]idwindow.StoredID, error) {
			n, err := idwindow.PartitionCount(ctx, cl, topic)
			if err != nil {
				return nil, err
			}
			if counts, err = w.sink.PartitionCounts(ctx, topic, n, now); err != nil {
				return nil, err
			}
			current = n
			return w.sink.Moved(ctx, topic, n, ps, since, w.cfg.DedupeMaxIDs)
		})
		// Loading retries until it succeeds or the client closes (then
		// current is 0 and the gate keeps what it knew).
		w.gate.Assign(ps, current, handover.Older(counts, current, now, handover.Window))
	}
}

// load adds the ids read stored since the window's start to the window,
// retrying read until it succeeds or ctx ends (partition -1: several).
func (w *Writer) load(ctx context.Context, what string, partition int32, read func(since time.Time) ([]idwindow.StoredID, error)) {
	now := w.now()
	var ids []idwindow.StoredID
	err := w.retry(ctx, what, 0, w.m.registryErrs, func() error {
		var err error
		ids, err = read(now.Add(-w.cfg.DedupeWindow))
		return err
	})
	if err != nil {
		w.log.Warn("idempotency window not loaded", "what", what, "partition", partition, "err", err)
		return
	}
	w.m.windowEvicted.Add(float64(w.ids.Add(now, ids)))
}

// onRevoked flushes, waits for the inserts and commits before partitions
// move to another member.
func (w *Writer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	w.forgetHeld(cl, revoked)
	if err := w.drain(ctx); err != nil {
		w.log.Warn("flush on revoke failed; records will be replayed", "err", err)
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		// The rows are stored; a failed commit only means a replay later,
		// which the table collapses.
		w.m.commitErrors.Inc()
		w.log.Warn("commit on revoke failed; records will be replayed", "err", err)
	}
}

// onLost drops the buffer: the partitions belong to someone else now, and
// committing for them could rewind their progress.
func (w *Writer) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	w.forgetHeld(cl, lost)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropLocked()
}

// forgetHeld counts partitions leaving and drops the records the gate
// holds of them (unprocessed, so not committed), resuming their fetching
// so that a later assignment does not start paused.
func (w *Writer) forgetHeld(cl *kgo.Client, gone map[string][]int32) {
	w.m.forgetLag(gone)
	for topic, ps := range gone {
		w.m.assigned.Sub(float64(len(ps)))
		if w.gate == nil {
			continue
		}
		if resume := w.gate.Revoke(ps); len(resume) > 0 {
			cl.ResumeFetchPartitions(map[string][]int32{topic: resume})
		}
	}
}

// dropLocked forgets the buffer and the batches in flight (those still
// mark their records if their insert succeeds, which is correct: marks
// only follow stored rows).
func (w *Writer) dropLocked() {
	w.rows = w.rows[:0]
	w.parts = w.parts[:0]
	w.offs = w.offs[:0]
	w.skipped = w.skipped[:0]
	w.keys = w.keys[:0]
	w.pending = w.pending[:0]
	w.bytes = 0
	w.inflight = nil
}
