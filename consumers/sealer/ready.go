package sealer

// Which records are ready: those the writer group committed, that is,
// stored (or dead-lettered, or skipped) by the writer.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// retryAfter is how long a failed round waits before the next attempt.
const retryAfter = time.Second

// sealReady seals, up to BatchSize, the pending records below the writer
// group's committed offsets, and marks their offsets for commit.
func (s *Sealer) sealReady(ctx context.Context) {
	now := s.now()
	if now.Before(s.retryAt) || s.waiting() == 0 {
		return
	}
	if now.Sub(s.checked) >= s.cfg.CheckEvery {
		s.readWriterOffsets(ctx)
		s.checked = now
	}
	s.yield = yielding(s.ends, s.writerAt, s.cfg.YieldLag)
	s.m.yielding.Set(map[bool]float64{false: 0, true: 1}[s.yield])
	if s.yield && now.Sub(s.sealed) < s.cfg.YieldEvery {
		return
	}
	ready := s.ready()
	if len(ready) == 0 {
		return
	}
	s.sealed = now
	var items []Item
	for _, r := range ready {
		it, ok := s.decode(r)
		if !ok {
			s.m.records.WithLabelValues("undecodable").Inc()
			continue
		}
		ws := it.Key.WorkspaceID
		if p, ok := s.wsPart[ws]; ok && p != r.Partition {
			// The workspace's records come from another partition than
			// the ones its log in memory was built from (a partition
			// move): another sealer may have appended since.
			delete(s.seq.trees, ws)
		}
		s.wsPart[ws] = r.Partition
		items = append(items, it)
	}
	start := time.Now()
	out, err := s.seq.seal(ctx, items)
	if err != nil {
		switch {
		case errors.Is(err, ErrTampered):
			s.m.errors.WithLabelValues("tampered").Inc()
			s.log.Error("a stored log does not extend its signed checkpoint: not appending to it or signing it; its partition waits", "err", err)
		case errors.Is(err, ErrFenced):
			s.m.errors.WithLabelValues("fenced").Inc()
			s.log.Warn("a stored log changed under this sealer (another owner?); loading it again", "err", err)
		default:
			s.m.errors.WithLabelValues("seal").Inc()
			s.log.Warn("seal failed; the records are sealed again", "records", len(ready), "err", err)
		}
		s.retryAt = now.Add(retryAfter)
		return
	}
	s.m.sealSeconds.Observe(time.Since(start).Seconds())
	s.m.leaves.Add(float64(len(out.Leaves)))
	s.m.reclaimed.Add(float64(out.Reclaimed))
	for reason, n := range out.ReadBack {
		s.m.readBack.WithLabelValues(reason).Add(float64(n))
	}
	s.m.records.WithLabelValues("leaf").Add(float64(len(out.Leaves)))
	s.m.records.WithLabelValues("repeat").Add(float64(out.Repeats))
	s.m.records.WithLabelValues("not_stored").Add(float64(out.Skipped))
	s.m.records.WithLabelValues("mismatch").Add(float64(len(out.Mismatches)))
	s.m.records.WithLabelValues("mismatch").Add(float64(len(out.OffsetMismatches)))
	for _, k := range out.OffsetMismatches {
		s.log.Error("the offsets record's row of a record differs from it (the writer writes the record's key and received_at): read back instead (was audit_event_offsets changed in ClickHouse?)",
			"workspace", k.WorkspaceID, "id", k.ID, "timestamp_ns", k.TimestampNs)
	}
	s.checkSample(out.Sample)
	for _, k := range out.Mismatches {
		s.log.Error("the stored event differs from the record it was stored from: not sealed (was the row changed in ClickHouse?)",
			"workspace", k.WorkspaceID, "id", k.ID, "timestamp_ns", k.TimestampNs)
	}
	last := map[int32]*kgo.Record{}
	for _, r := range ready {
		last[r.Partition] = r
	}
	for p, r := range last {
		s.pending[p] = s.pending[p][slices.Index(s.pending[p], r)+1:]
		s.cl.MarkCommitRecords(r)
	}
	s.m.waiting.Set(float64(s.waiting()))
}

// ready returns the leading pending records of each partition below the
// writer's committed offset, BatchSize at most in all.
func (s *Sealer) ready() []*kgo.Record {
	var out []*kgo.Record
	size := 0
	for _, p := range slices.Sorted(maps.Keys(s.pending)) {
		at, ok := s.writerAt[p]
		if !ok {
			continue
		}
		for _, r := range s.pending[p] {
			if r.Offset >= at || len(out) >= s.cfg.BatchSize || (len(out) > 0 && size+len(r.Value) > s.cfg.BatchBytes) {
				break
			}
			out = append(out, r)
			size += len(r.Value)
		}
	}
	return out
}

// readWriterOffsets reads the writer group's committed offsets of the
// partitions with pending records. A failed read keeps the last ones.
func (s *Sealer) readWriterOffsets(ctx context.Context) {
	var parts []int32
	for p, recs := range s.pending {
		if len(recs) > 0 {
			parts = append(parts, p)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := s.off.Committed(octx, s.cfg.WriterGroup, s.cfg.Topic, parts)
	if err != nil {
		if ctx.Err() == nil {
			s.m.errors.WithLabelValues("offsets").Inc()
			s.log.Warn("the writer group's offsets not read; sealing waits", "group", s.cfg.WriterGroup, "err", err)
		}
		return
	}
	maps.Copy(s.writerAt, got)
}

func (s *Sealer) waiting() int {
	n := 0
	for _, recs := range s.pending {
		n += len(recs)
	}
	return n
}

// syncPause pauses the fetching of partitions that read far enough ahead,
// or of every partition with records waiting once they hold PendingBytes
// in all, and resumes those back under it (the gate's own pauses aside:
// it resumes those itself). A partition reads ahead at most BatchSize
// records past those the writer has committed (none are before its first
// commit is known), and MaxPending in all: records the writer has not
// stored cannot be sealed, and holding them costs memory and, beside a
// writer on the same cores, CPU. While the sealer yields to the writer it
// holds at most BatchSize.
func (s *Sealer) syncPause() {
	pause, resume := pauses(s.pending, s.paused, s.readAhead, s.cfg.PendingBytes)
	for _, p := range pause {
		s.paused[p] = true
	}
	for _, p := range resume {
		delete(s.paused, p)
	}
	if len(pause) > 0 {
		s.cl.PauseFetchPartitions(map[string][]int32{s.cfg.Topic: pause})
	}
	if len(resume) > 0 {
		s.cl.ResumeFetchPartitions(map[string][]int32{s.cfg.Topic: resume})
	}
}

// readAhead is how many records partition p may hold waiting (recs, in
// offset order): BatchSize past those the writer has committed (past none
// while yielding or before the writer's offset is known), MaxPending at
// most.
func (s *Sealer) readAhead(p int32, recs []*kgo.Record) int {
	ahead := s.cfg.BatchSize
	if at, ok := s.writerAt[p]; ok && !s.yield {
		ahead += sort.Search(len(recs), func(i int) bool { return recs[i].Offset >= at })
	}
	return min(s.cfg.maxPending(), ahead)
}

// pauses returns which partitions to pause and which paused ones to
// resume: a partition is full with limit(p, its records) records waiting,
// and every partition with records waiting is full while they hold
// maxBytes of record values in all (0: no limit). A partition without
// records waiting is never held: its records are what lets the others be
// sealed (a round takes the writer-committed records of every partition).
func pauses(pending map[int32][]*kgo.Record, paused map[int32]bool, limit func(p int32, recs []*kgo.Record) int, maxBytes int) (pause, resume []int32) {
	total := 0
	for _, recs := range pending {
		for _, r := range recs {
			total += len(r.Value)
		}
	}
	overBytes := maxBytes > 0 && total >= maxBytes
	for _, p := range slices.Sorted(maps.Keys(pending)) {
		recs := pending[p]
		full := (len(recs) > 0 && len(recs) >= limit(p, recs)) || (overBytes && len(recs) > 0)
		if full && !paused[p] {
			pause = append(pause, p)
		} else if !full && paused[p] {
			resume = append(resume, p)
		}
	}
	return pause, resume
}

// yielding reports whether the writer group lags at least lag records
// behind the ends of the partitions (summed over those whose end and
// writer offset are both known): the sealer then yields the CPU to the
// writer, whose stored rows are what it seals. Sealing costs the server
// and the process about as much per event as storing does, so beside a
// writer working off a backlog it would slow the writer by about a fifth
// on two cores; yielding stores the backlog first and seals it after
// (checkpoints wait, records are never skipped).
func yielding(ends, writerAt map[int32]int64, lag int) bool {
	if lag <= 0 {
		return false
	}
	var behind int64
	for p, end := range ends {
		if at, ok := writerAt[p]; ok && end > at {
			behind += end - at
		}
	}
	return behind >= int64(lag)
}
