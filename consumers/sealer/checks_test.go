package sealer

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/migrations"
)

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
	c := newChecker(16)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	reads := make(chan int, 10)
	c.start(ctx, func(_ context.Context, sc SampleCheck) {
		reads <- len(sc.leaves)
		<-release
	})
	require.Zero(t, c.addSample(sampleOf(5)))
	require.Equal(t, 5, <-reads, "the first sample is being read (and stuck)")
	require.Zero(t, c.addSample(sampleOf(7)))
	require.Zero(t, c.addSample(sampleOf(9)))
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

// TestSamplesWaitUpToTheirBound: at most 4 samples' worth of leaves wait
// (64 for samples of 16 or fewer); the rest are skipped, counted by the
// sealer.
func TestSamplesWaitUpToTheirBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Sealer{m: newMetrics(reg), checks: newChecker(16)} // not started: samples stay waiting
	skipped := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "audittrail_sealer_rows_sampled_total" && m.GetLabel()[0].GetValue() == sampleSkipped {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	s.checkSample(sampleOf(16))
	s.checkSample(sampleOf(16))
	s.checkSample(sampleOf(30))
	require.Zero(t, skipped(), "62 wait")
	s.checkSample(sampleOf(16))
	require.Equal(t, 14.0, skipped(), "2 more fit, 14 are skipped")
	s.checkSample(SampleCheck{})
	require.Equal(t, 14.0, skipped(), "an empty sample is no check")
	require.Len(t, s.checks.waiting.leaves, 64)
	require.Len(t, s.checks.waiting.records, 64)
	require.Equal(t, 256, newChecker(64).max, "4 samples of 64")
}
