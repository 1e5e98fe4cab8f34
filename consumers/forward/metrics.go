package forward

// The forwarder's Prometheus metrics.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

type metrics struct {
	read        prometheus.Counter
	forwarded   prometheus.Counter
	alerts      prometheus.Counter
	dropped     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	latency     prometheus.Histogram
	violations  prometheus.Counter
	filterErrs  prometheus.Counter
	inFlight    prometheus.Gauge
	// registryErrors counts registry loads that failed at assignment: one
	// per partition, and one for the workspaces moved to the assigned
	// partitions.
	registryErrors prometheus.Counter
	// paused counts source targets whose delivery is paused (the target
	// refuses the write key or address); splitRequests the requests made
	// to isolate rejected events.
	paused        prometheus.Gauge
	splitRequests prometheus.Counter
	// heldPartitions counts partitions whose fetching is paused because
	// a target's queue is full.
	heldPartitions prometheus.Gauge
	// lag is each partition's records behind its high watermark at the
	// last fetch that returned records (observeLag).
	lag *prometheus.GaugeVec
	// ws are the delivery metrics per workspace (bounded).
	ws *wsMetrics
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		read: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_records_read_total",
			Help: "Records read from the events topic."}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_events_forwarded_total",
			Help: "Events delivered to workspaces' sources."}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_alerts_sent_total",
			Help: "Alert messages delivered to chat webhooks."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "audittrail_forwarder_events_dropped_total",
			Help: "Events not forwarded by design, by reason (not_final_failure, unplanned_event, violation, filter, disabled, undecodable, duplicate_id)."}, []string{"reason"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "audittrail_forwarder_dead_letters_total",
			Help: "Events dead-lettered, by target and reason."}, []string{"target", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "audittrail_forwarder_delivery_attempts_total",
			Help: "HTTP delivery attempts by target and result (ok, retry, rejected, refused)."}, []string{"target", "result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "audittrail_forwarder_delivery_seconds",
			Help:    "Time from reading an event to its delivery acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		violations: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_violations_total",
			Help: "Events that violated their workspace's tracking plan."}),
		filterErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_filter_errors_total",
			Help: "Filter conditions that failed to evaluate (treated as not matching)."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "audittrail_forwarder_in_flight",
			Help: "Records read and not yet delivered, dropped or dead-lettered."}),
		registryErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_registry_load_errors_total",
			Help: "Loads of ids registered by the writer that failed at assignment, one per assigned partition and one for the workspaces moved to them by a partition-count increase (resends of those ids may be forwarded)."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "audittrail_forwarder_paused_targets",
			Help: "Workspaces whose delivery is paused because their target refuses the write key (401, 403) or address (404, 410); their events are kept."}),
		splitRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "audittrail_forwarder_split_requests_total",
			Help: "Requests made to isolate the events of batches a target rejected."}),
		heldPartitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "audittrail_forwarder_held_partitions",
			Help: "Partitions whose reading is paused because one workspace's queue is full (its target paused, failing or slow)."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "audittrail_forwarder_consumer_lag",
			Help: "Records behind the high watermark per partition, at the last fetch."}, []string{"topic", "partition"}),
	}
	// Every target and result from the start, so that rates and increases
	// count the first attempt of each kind.
	for _, target := range []string{TargetSource, TargetAlert} {
		for _, result := range []string{"ok", "retry", "rejected", "refused"} {
			m.attempts.WithLabelValues(target, result)
		}
	}
	m.ws = newWSMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.paused, m.splitRequests, m.heldPartitions, m.lag)
		reg.MustRegister(m.read, m.forwarded, m.alerts, m.dropped, m.deadLetters, m.attempts, m.latency, m.violations, m.filterErrs, m.inFlight, m.registryErrors)
	}
	return m
}

// observeLag records a partition's lag after a fetch: its high watermark
// minus the next offset to consume.
func (m *metrics) observeLag(p kgo.FetchTopicPartition) {
	if n := len(p.Records); n > 0 {
		lag := p.HighWatermark - p.Records[n-1].Offset - 1
		m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
	}
}

// forgetLag removes the lag of partitions that left this member: their new
// owner reports it.
func (m *metrics) forgetLag(gone map[string][]int32) {
	for topic, ps := range gone {
		for _, p := range ps {
			m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}
