package sealer

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestTheCheckerRunsOneCheckAndHoldsOneMore: while a check runs, one more
// waits and any other is refused; stopping ends the worker, the waiting
// check unrun.
func TestTheCheckerRunsOneCheckAndHoldsOneMore(t *testing.T) {
	c := newChecker()
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	ran := 0
	c.start(ctx)
	require.True(t, c.offer(func(context.Context) { ran++; close(started); <-release }))
	<-started
	require.True(t, c.offer(func(context.Context) { ran++ }), "one waits")
	require.False(t, c.offer(func(context.Context) { ran++ }), "a third is refused")
	cancel()
	close(release)
	c.wait()
	require.LessOrEqual(t, ran, 2)
	require.GreaterOrEqual(t, ran, 1)
}

// TestASampleTheWorkerCannotTakeIsCountedSkipped: with a check waiting
// already, a round's sample is not read and its rows count as skipped.
func TestASampleTheWorkerCannotTakeIsCountedSkipped(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Sealer{m: newMetrics(reg), checks: newChecker()} // not started: offers stay waiting
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
	check := SampleCheck{leaves: make([]migrations.Leaf, 3), records: make([]*migrations.Row, 3)}
	s.checkSample(check)
	require.Zero(t, skipped(), "the first waits")
	s.checkSample(check)
	require.Equal(t, 3.0, skipped())
	s.checkSample(SampleCheck{})
	require.Equal(t, 3.0, skipped(), "an empty sample is no check")
}
