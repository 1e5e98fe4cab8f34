package sealer

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// leftOut is how many leaves addSample left out, skipped or thinned.
func leftOut(skipped, thinned int) int { return skipped + thinned }

// sampleOf is a sample of n leaves (their indexes 0..n-1).
func sampleOf(n int) SampleCheck {
	sc := SampleCheck{leaves: make([]migrations.Leaf, n), records: make([]*migrations.Row, n)}
	for i := range sc.leaves {
		sc.leaves[i].Index = uint64(i)
	}
	return sc
}

// TestASlowSampleHoldsNeitherTheAuditNorLaterSamples: while a sample's
// read is stuck, an audit pass runs, and the samples of later rounds wait
// merged; once the read returns they are read together, in one read.
func TestASlowSampleHoldsNeitherTheAuditNorLaterSamples(t *testing.T) {
	c := newChecker(16, 0)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	reads := make(chan int, 10)
	c.start(ctx, func(_ context.Context, sc SampleCheck) {
		reads <- len(sc.leaves)
		<-release
	})
	require.Zero(t, leftOut(c.addSample(sampleOf(5))))
	require.Equal(t, 5, <-reads, "the first sample is being read (and stuck)")
	require.Zero(t, leftOut(c.addSample(sampleOf(7))))
	require.Zero(t, leftOut(c.addSample(sampleOf(9))))
	require.True(t, c.auditFree())
	audited := make(chan struct{})
	c.audits <- func(context.Context) { close(audited) }
	select {
	case <-audited:
	case <-time.After(30 * time.Second):
		t.Fatal("the audit waited for the stuck sample")
	}
	release <- struct{}{}
	require.Equal(t, 16, <-reads, "the two later samples, merged")
	close(release)
	cancel()
	c.wait()
}

// TestSamplesWaitUpToTheirBound: at most one sample's worth of leaves
// waits; the rest are left out, counted by the sealer as skipped while a
// read has run longer than the pace (the reads cannot keep it) and as
// thinned otherwise.
func TestSamplesWaitUpToTheirBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Sealer{m: newMetrics(reg), checks: newChecker(16, time.Second)} // not started: samples stay waiting
	count := func(result string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "audittrail_sealer_rows_sampled_total" && m.GetLabel()[0].GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	s.checks.reading, s.checks.readAt = true, time.Now().Add(-time.Hour) // a read running for an hour
	s.checkSample(sampleOf(10))
	require.Zero(t, count(sampleSkipped), "10 wait")
	s.checkSample(sampleOf(10))
	require.Equal(t, 4.0, count(sampleSkipped), "6 more fit, 4 are skipped")
	s.checkSample(SampleCheck{})
	require.Equal(t, 4.0, count(sampleSkipped), "an empty sample is no check")
	require.Zero(t, count(sampleThinned))
	s.checks.readAt = time.Now() // a read running for less than the pace
	s.checkSample(sampleOf(10))
	require.Equal(t, 10.0, count(sampleThinned), "left out while the read keeps the pace: thinned")
	s.checks.reading = false // the worker waits for its pace
	s.checkSample(sampleOf(5))
	require.Equal(t, 15.0, count(sampleThinned), "left out while no read runs: thinned")
	require.Equal(t, 4.0, count(sampleSkipped))
	require.Len(t, s.checks.waiting.leaves, 16)
	require.Len(t, s.checks.waiting.records, 16)
	require.Equal(t, 64, newChecker(64, 0).max)
}

// TestSampleReadsArePaced: while rounds offer samples every few
// milliseconds (a sealer catching up), a sample read begins at most every
// SampleEvery; the rounds' samples between reads wait for the next one.
func TestSampleReadsArePaced(t *testing.T) {
	// In a synctest bubble: the clock is the bubble's, so the rounds' 3 ms
	// apart and the reads' pace are exact, whatever the machine's load.
	synctest.Test(t, func(t *testing.T) {
		const every = 150 * time.Millisecond
		c := newChecker(16, every)
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu     sync.Mutex
			starts []time.Time
			read   int
		)
		c.start(ctx, func(_ context.Context, sc SampleCheck) {
			mu.Lock()
			starts = append(starts, time.Now())
			read += len(sc.leaves)
			mu.Unlock()
		})
		began := time.Now()
		for range 200 { // 600 ms of rounds
			c.addSample(sampleOf(16))
			time.Sleep(3 * time.Millisecond)
		}
		synctest.Wait()
		cancel()
		c.wait()
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, 5, len(starts), "reads at 0, 150, 300, 450 and 600 ms (the last rounds' picks)")
		for i := 1; i < len(starts); i++ {
			require.Equal(t, every, starts[i].Sub(starts[i-1]), "read %d began %v after the one before", i, starts[i].Sub(starts[i-1]))
		}
		require.Equal(t, began, starts[0], "the first read begins at once")
		require.LessOrEqual(t, read, 16*len(starts), "each read takes at most one sample's worth")
	})
}

// TestWaitingLeavesAreAUniformChoice: when more rounds' samples arrive
// than wait for the next read, the waiting leaves are a uniform choice
// among all of them, not the first rounds' (a change made after the first
// round of a backlog would otherwise never be sampled). The draws come
// from a fixed seed, so the test is deterministic.
func TestWaitingLeavesAreAUniformChoice(t *testing.T) {
	late, kept := 0, 0
	for trial := range 200 {
		c := newChecker(16, 0) // not started: the samples stay waiting
		c.rnd = rand.New(rand.NewChaCha8([32]byte{byte(trial), 1}))
		left := 0
		for r := range 100 {
			sc := sampleOf(16)
			for i := range sc.leaves {
				sc.leaves[i].Index = uint64(r*16 + i)
			}
			left += leftOut(c.addSample(sc))
		}
		require.Len(t, c.waiting.leaves, 16)
		require.Len(t, c.waiting.records, 16)
		require.Equal(t, 1600-16, left, "every leaf offered waits or is left out")
		seen := map[uint64]bool{}
		for _, l := range c.waiting.leaves {
			require.False(t, seen[l.Index], "leaf %d waits twice", l.Index)
			seen[l.Index] = true
			if l.Index >= 800 {
				late++
			}
			kept++
		}
	}
	// Uniform: half the leaves kept come from the last 50 rounds.
	share := float64(late) / float64(kept)
	require.InDelta(t, 0.5, share, 0.05, "share of the leaves kept from the later rounds")
}
