package forward

// Delivery metrics per workspace, with bounded cardinality.

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxWorkspaceSeries bounds the workspace label of the per-workspace
// delivery metrics: the first MaxWorkspaceSeries workspaces with a delivery
// outcome since the forwarder started get their own value, later ones share
// OtherWorkspaces, so a deployment with many workspaces keeps a bounded
// number of series (dashboards show the top ones).
const MaxWorkspaceSeries = 100

// OtherWorkspaces is the workspace label of the workspaces past
// MaxWorkspaceSeries.
const OtherWorkspaces = "other"

// wsMetrics counts deliveries, failures and delivery latency per
// workspace. Safe for concurrent use.
type wsMetrics struct {
	mu        sync.Mutex
	named     map[string]bool
	delivered *prometheus.CounterVec   // workspace, target
	failed    *prometheus.CounterVec   // workspace, target, result
	latency   *prometheus.HistogramVec // workspace
}

func newWSMetrics(reg prometheus.Registerer) *wsMetrics {
	m := &wsMetrics{
		named: map[string]bool{},
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "audittrail_forwarder_workspace_events_delivered_total",
			Help: "Events delivered, by workspace (the first 100 workspaces to have a delivery outcome; the rest as \"other\") and target."},
			[]string{"workspace", "target"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "audittrail_forwarder_workspace_delivery_failures_total",
			Help: "Failed delivery attempts and dead letters, by workspace (as in audittrail_forwarder_workspace_events_delivered_total), target and result (retry, rejected, refused, dead_letter)."},
			[]string{"workspace", "target", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "audittrail_forwarder_workspace_delivery_seconds",
			Help:    "Time from reading an event to its delivery to the workspace's source, by workspace (as above).",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8)}, []string{"workspace"}),
	}
	// The shared series exist from the start, so that the metrics are
	// exported (and increases count) before the first outcome.
	for _, target := range []string{TargetSource, TargetAlert} {
		m.delivered.WithLabelValues(OtherWorkspaces, target)
		for _, result := range []string{"retry", "rejected", "refused", "dead_letter"} {
			m.failed.WithLabelValues(OtherWorkspaces, target, result)
		}
	}
	m.latency.WithLabelValues(OtherWorkspaces)
	if reg != nil {
		reg.MustRegister(m.delivered, m.failed, m.latency)
	}
	return m
}

// label is the workspace label of ws: its id while there is room, else
// OtherWorkspaces.
func (m *wsMetrics) label(ws string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.named[ws] {
		return ws
	}
	if len(m.named) < MaxWorkspaceSeries && ws != OtherWorkspaces {
		m.named[ws] = true
		return ws
	}
	return OtherWorkspaces
}

// deliveredTo counts n events delivered to ws's target, and (for sources)
// how long each took.
func (m *wsMetrics) deliveredTo(ws, target string, took []time.Duration) {
	l := m.label(ws)
	m.delivered.WithLabelValues(l, target).Add(float64(len(took)))
	if target != TargetSource {
		return
	}
	h := m.latency.WithLabelValues(l)
	for _, d := range took {
		h.Observe(d.Seconds())
	}
}

// failedFor counts one failed attempt (or dead letter) for ws's target.
func (m *wsMetrics) failedFor(ws, target, result string) {
	m.failed.WithLabelValues(m.label(ws), target, result).Inc()
}
