package sealer

// The checks' workers: the live sample's and the background audit's
// reads run on two goroutines beside the sealer's loop, so that a slow or
// failing server delays no round, and neither check waits for the other.
// The sample's reads are paced: one begins at most every sampleEvery, so
// a sealer catching up on a backlog (a round every few milliseconds) does
// not keep a read of the events table running all the time. The rounds'
// samples that arrive meanwhile wait, merged, up to one sample's worth of
// leaves (so a read names at most AUDITTRAIL_SEALER_SAMPLE keys), kept as
// a uniform random choice among all of them (a reservoir: a leaf of the
// last round is as likely to be read as one of the first); the others are
// left out, and counted. An audit pass is formed only when
// no other waits for the audit's worker (one may be running), so a slow
// pass delays the next one and none is lost.

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// checker owns the two workers. The sealer's loop calls checkSample and
// auditLogs; Run calls start and wait.
type checker struct {
	mu      sync.Mutex
	waiting SampleCheck // the samples not read yet
	max     int         // the most leaves waiting
	// offered counts the leaves offered since the worker last took the
	// waiting ones (the reservoir's population).
	offered int
	rnd     *rand.Rand // the reservoir's choices (seeded from crypto/rand)
	reading bool       // a sample read is running, since readAt
	readAt  time.Time
	every   time.Duration
	wake    chan struct{} // a sample is waiting
	audits  chan func(context.Context)
	wg      sync.WaitGroup
}

// newChecker returns the workers of samples of up to sample leaves, whose
// reads begin at most every every.
func newChecker(sample int, every time.Duration) *checker {
	return &checker{max: max(sample, 1), rnd: seededRand(), every: every,
		wake: make(chan struct{}, 1), audits: make(chan func(context.Context), 1)}
}

// start runs the workers until ctx ends: read reads a sample.
func (c *checker) start(ctx context.Context, read func(context.Context, SampleCheck)) {
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
				began := time.Now()
				c.mu.Lock()
				sc := c.waiting
				c.waiting, c.offered, c.reading, c.readAt = SampleCheck{}, 0, true, began
				c.mu.Unlock()
				read(ctx, sc)
				c.mu.Lock()
				c.reading = false
				c.mu.Unlock()
				if !pause(ctx, c.every-time.Since(began)) {
					return
				}
			}
		}
	})
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case job := <-c.audits:
				job(ctx)
			}
		}
	})
}

// wait returns once the workers start began have returned (after their
// context ended).
func (c *checker) wait() { c.wg.Wait() }

// pause waits d (nothing when d <= 0); false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// addSample adds a round's sample to those waiting and wakes the worker;
// it returns how many leaves it left out: once max wait, each new leaf
// takes the place of a waiting one with probability max/offered
// (reservoir sampling), so the waiting leaves stay a uniform choice among
// every leaf offered since the last read. A leaf left out while a read
// has run for longer than the pace is skipped (the reads cannot keep the
// pace); any other left out is thinned (by design).
func (c *checker) addSample(sc SampleCheck) (skipped, thinned int) {
	c.mu.Lock()
	out := &thinned
	if c.reading && time.Since(c.readAt) > c.every {
		out = &skipped
	}
	for i := range sc.leaves {
		c.offered++
		if len(c.waiting.leaves) < c.max {
			c.waiting.leaves = append(c.waiting.leaves, sc.leaves[i])
			c.waiting.records = append(c.waiting.records, sc.records[i])
			continue
		}
		*out++ // this leaf, or the waiting one it replaces
		if j := c.rnd.IntN(c.offered); j < c.max {
			c.waiting.leaves[j], c.waiting.records[j] = sc.leaves[i], sc.records[i]
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the worker is woken already
	}
	return skipped, thinned
}

// auditFree reports whether no audit pass waits for the worker (one may
// be running): a pass handed over now is taken when it is done.
func (c *checker) auditFree() bool { return len(c.audits) == 0 }

// checkSample hands a round's sample to the worker, which reads it,
// counts and logs what it found; leaves that do not fit are counted
// skipped.
func (s *Sealer) checkSample(sc SampleCheck) {
	if len(sc.leaves) == 0 {
		return
	}
	skipped, thinned := s.checks.addSample(sc)
	if skipped > 0 {
		s.m.sampled.WithLabelValues(sampleSkipped).Add(float64(skipped))
	}
	if thinned > 0 {
		s.m.sampled.WithLabelValues(sampleThinned).Add(float64(thinned))
	}
}
