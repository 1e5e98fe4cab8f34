package writer

// The writer's Prometheus metrics.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/internal/config"
)

type metrics struct {
	inserted      prometheus.Counter
	insertErrors  prometheus.Counter
	registryErrs  prometheus.Counter
	offsetsErrs   prometheus.Counter
	commitErrors  prometheus.Counter
	expired       prometheus.Counter
	duplicates    *prometheus.CounterVec
	windowEvicted prometheus.Counter
	deadLetters   *prometheus.CounterVec
	batchSize     prometheus.Histogram
	insertLatency prometheus.Histogram
	lag           *prometheus.GaugeVec
	assigned      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inserted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_rows_inserted_total", Help: "Rows ClickHouse acknowledged."}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_insert_errors_total", Help: "Failed insert attempts of events (each is retried)."}),
		registryErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_id_registry_errors_total",
			Help: "Failed writes and reads of the id registry (each is retried; a partition's offsets wait for its ids)."}),
		offsetsErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_offsets_record_errors_total",
			Help: "Failed writes of the offsets record audit_event_offsets (each is retried; a batch's offsets wait for it; a schema before migration 9 fails every one: run the migrations)."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_commit_errors_total", Help: "Failed offset commits (records are replayed)."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_expired_events_total", Help: "Events already outside the retention window on arrival, not stored."}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_writer_duplicate_ids_total",
			Help: "Events not stored because their id was stored within the idempotency window: kind=replayed (same timestamp) or conflict (another timestamp; the first stays)."},
			[]string{"kind"}),
		windowEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_idempotency_window_evicted_total",
			Help: "Ids forgotten before the end of the idempotency window because of " + config.WriterDedupeMaxIDs.Name + "."}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_writer_dead_letters_total", Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audittrail_writer_batch_rows", Help: "Rows per insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		insertLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audittrail_writer_insert_seconds", Help: "Latency of successful inserts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "audittrail_writer_consumer_lag", Help: "Records behind the high watermark per partition, at the last fetch."},
			[]string{"topic", "partition"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_writer_assigned_partitions", Help: "Partitions this instance owns in its group."}),
	}
	// The dead-letter reasons from the start, so that an increase counts
	// the first dead letter of each.
	for _, reason := range []string{reasonUndecodable, reasonInvalid} {
		m.deadLetters.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.inserted, m.insertErrors, m.registryErrs, m.offsetsErrs, m.commitErrors, m.expired, m.duplicates, m.windowEvicted, m.deadLetters, m.batchSize, m.insertLatency, m.lag, m.assigned)
	}
	return m
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
