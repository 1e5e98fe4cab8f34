package sealer

// The checks' worker: the live sample's and the background audit's reads
// run on one goroutine beside the sealer's loop, one at a time, so that a
// slow or failing server delays no round. A check offered while one is
// waiting is skipped (counted), never queued without bound.

import (
	"context"
	"sync"
)

// checker runs checks one at a time. offer is called by the sealer's
// loop; start and stop by Run.
type checker struct {
	jobs chan func(context.Context)
	wg   sync.WaitGroup
}

func newChecker() *checker {
	return &checker{jobs: make(chan func(context.Context), 1)} // one running, one waiting
}

// start runs the offered checks until ctx ends.
func (c *checker) start(ctx context.Context) {
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case job := <-c.jobs:
				job(ctx)
			}
		}
	})
}

// wait returns once the goroutine start began has returned (after its
// context ended).
func (c *checker) wait() { c.wg.Wait() }

// offer hands job to the worker unless a check is already waiting; it
// reports whether job was taken.
func (c *checker) offer(job func(context.Context)) bool {
	select {
	case c.jobs <- job:
		return true
	default:
		return false
	}
}

// checkSample offers a round's sample to the worker, which reads it,
// counts and logs what it found.
func (s *Sealer) checkSample(c SampleCheck) {
	if len(c.leaves) == 0 {
		return
	}
	if !s.checks.offer(func(ctx context.Context) { s.report(c.run(ctx, s.store)) }) {
		s.m.sampled.WithLabelValues(sampleSkipped).Add(float64(len(c.leaves)))
	}
}
