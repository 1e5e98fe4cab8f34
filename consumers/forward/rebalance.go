package forward

// Partition assignment changes: the registry's ids are loaded for assigned
// partitions before their records are read; revoked and lost partitions
// are forgotten so that none of their records is marked after they moved.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// onAssigned loads the ids registered for the assigned partitions before
// any of their records is read (loadFirsts).
func (f *Forwarder) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	f.loadFirsts(ctx, cl, assigned[f.cfg.Topic])
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
	f.m.forgetLag(m)
	if f.gate != nil {
		f.gate.Revoke(m[f.cfg.Topic]) // revoked partitions resume in syncFetch
	}
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
