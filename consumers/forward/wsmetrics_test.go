package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// TestWorkspaceMetricsAreBounded: each workspace's deliveries, failures
// and latency are counted under its id, up to MaxWorkspaceSeries
// workspaces; the rest share "other", so the series stay bounded.
func TestWorkspaceMetricsAreBounded(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newWSMetrics(reg)
	m.deliveredTo("ws_a", TargetSource, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond})
	m.failedFor("ws_a", TargetSource, "retry")
	m.failedFor("ws_b", TargetSource, "dead_letter")
	require.Equal(t, 2.0, counterValue(t, m.delivered.WithLabelValues("ws_a", TargetSource)))
	require.Equal(t, 1.0, counterValue(t, m.failed.WithLabelValues("ws_a", TargetSource, "retry")))
	require.Equal(t, 1.0, counterValue(t, m.failed.WithLabelValues("ws_b", TargetSource, "dead_letter")))

	for i := range MaxWorkspaceSeries + 50 {
		m.failedFor(fmt.Sprintf("ws_%03d", i), TargetSource, "refused")
	}
	// ws_a and ws_b took two places: 98 more get their own series, 52 share "other".
	require.Equal(t, 52.0, counterValue(t, m.failed.WithLabelValues(OtherWorkspaces, TargetSource, "refused")))
	require.Equal(t, 1.0, counterValue(t, m.failed.WithLabelValues("ws_097", TargetSource, "refused")))
	m.failedFor("ws_a", TargetSource, "retry") // a named workspace keeps its series
	require.Equal(t, 2.0, counterValue(t, m.failed.WithLabelValues("ws_a", TargetSource, "retry")))
	workspaces := map[string]bool{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "workspace" {
					workspaces[l.GetValue()] = true
				}
			}
		}
	}
	require.Len(t, workspaces, MaxWorkspaceSeries+1, "the named workspaces and other")
}
