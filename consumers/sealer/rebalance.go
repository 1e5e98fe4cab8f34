package sealer

// Partition assignment changes: the handover gate is told the partition
// counts; on revoke the sealed offsets are committed, and on revoke or
// loss the partitions' waiting records and their workspaces' logs are
// dropped from memory (the next owner reads them again from Kafka and
// ClickHouse).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
)

func (s *Sealer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	ps := assigned[s.cfg.Topic]
	if len(ps) == 0 {
		return
	}
	current := 0
	var counts []idwindow.Count
	if s.counts != nil {
		now := s.now()
		n, err := idwindow.PartitionCount(ctx, cl, s.cfg.Topic)
		if err == nil {
			counts, err = s.counts.Observe(ctx, s.cfg.Topic, n, now)
		}
		if err != nil {
			s.m.errors.WithLabelValues("offsets").Inc()
			s.log.Warn("partition counts not read; the handover goes on with the counts known before", "err", err)
		} else {
			current = n
		}
	}
	s.gate.Assign(ps, current, handover.Older(counts, current, s.now(), handover.Window))
}

func (s *Sealer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.forget(cl, revoked[s.cfg.Topic])
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		s.m.errors.WithLabelValues("commit").Inc()
		s.log.Warn("commit on revoke failed; sealed records will be read again (and recognised)", "err", err)
	}
}

// onLost drops the partitions without committing: they are someone
// else's now.
func (s *Sealer) onLost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	s.forget(cl, lost[s.cfg.Topic])
}

func (s *Sealer) forget(cl *kgo.Client, ps []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resume := s.gate.Revoke(ps)
	for _, p := range ps {
		delete(s.pending, p)
		delete(s.writerAt, p)
		delete(s.ends, p)
		if s.paused[p] {
			delete(s.paused, p)
			resume = append(resume, p)
		}
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(map[string][]int32{s.cfg.Topic: resume})
	}
	s.seq.forget(func(ws string) bool {
		p, ok := s.wsPart[ws]
		return ok && !slices.Contains(ps, p)
	})
	for ws, p := range s.wsPart {
		if slices.Contains(ps, p) {
			delete(s.wsPart, ws)
		}
	}
	s.m.waiting.Set(float64(s.waiting()))
}
