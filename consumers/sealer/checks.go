package sealer

// The checks' workers: the live sample's and the background audit's
// reads run on two goroutines beside the sealer's loop, so that a slow or
// failing server delays no round, and neither check waits for the other.
// The rounds' samples that arrive while one is being read wait, merged,
// up to 4 samples' worth of leaves (beyond that they are skipped, and
// counted); an audit pass is formed only when no other waits for the
// audit's worker (one may be running), so a slow pass delays the next one
// and none is lost.

import (
	"context"
	"sync"
)

// checker owns the two workers. The sealer's loop calls checkSample and
// auditLogs; Run calls start and wait.
type checker struct {
	mu      sync.Mutex
	waiting SampleCheck   // the samples not read yet
	max     int           // the most leaves waiting
	wake    chan struct{} // a sample is waiting
	audits  chan func(context.Context)
	wg      sync.WaitGroup
}

// newChecker returns the workers of samples of up to sample leaves.
func newChecker(sample int) *checker {
	return &checker{max: 4 * max(sample, 16), wake: make(chan struct{}, 1), audits: make(chan func(context.Context), 1)}
}

// start runs the workers until ctx ends: read reads a sample.
func (c *checker) start(ctx context.Context, read func(context.Context, SampleCheck)) {
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
				c.mu.Lock()
				sc := c.waiting
				c.waiting = SampleCheck{}
				c.mu.Unlock()
				read(ctx, sc)
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

// addSample adds a round's sample to those waiting and wakes the worker;
// it returns how many of its leaves did not fit (skipped).
func (c *checker) addSample(sc SampleCheck) int {
	c.mu.Lock()
	n := min(len(sc.leaves), max(c.max-len(c.waiting.leaves), 0))
	c.waiting.leaves = append(c.waiting.leaves, sc.leaves[:n]...) // sc is a random pick: its first n are too
	c.waiting.records = append(c.waiting.records, sc.records[:n]...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the worker is woken already
	}
	return len(sc.leaves) - n
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
	if skipped := s.checks.addSample(sc); skipped > 0 {
		s.m.sampled.WithLabelValues(sampleSkipped).Add(float64(skipped))
	}
}
