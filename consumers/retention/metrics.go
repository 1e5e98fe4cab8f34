package retention

// The retention job's Prometheus metrics (registered by the writer, which
// runs the job).

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/internal/config"
)

type metrics struct {
	runs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	window      prometheus.Gauge
	oldest      prometheus.Gauge
	// archiveFailures counts the (workspace, day)s an archive failed for.
	archiveFailures prometheus.Counter
	// mutationSince is, by table, when its oldest unfinished mutation was
	// issued (0: none): the job issues no delete on a table meanwhile.
	mutationSince *prometheus.GaugeVec
}

func newMetrics(days int) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_writer_retention_runs_total", Help: "Runs of the retention job by result (ok, failed)."},
			[]string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_writer_retention_last_success_timestamp_seconds",
			Help: "When the retention job last completed (Unix seconds; 0 before its first success)."}),
		window: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_writer_retention_window_seconds", Help: "The retention window (" + config.RetentionDays.Name + ")."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_writer_oldest_partition_timestamp_seconds",
			Help: "Start of the oldest day partition of the events table after the last successful retention run (Unix seconds; the run's time when the table is empty)."}),
		archiveFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_writer_retention_archive_failures_total",
			Help: "Workspace days whose archive before expiry failed (kept until a later run)."}),
		mutationSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "audittrail_writer_retention_mutation_pending_since_timestamp_seconds",
			Help: "When the oldest unfinished mutation (ALTER TABLE ... DELETE) of a table the retention job deletes from was issued, at the job's last run (Unix seconds; 0: none). The job issues no delete on a table while one is unfinished."},
			[]string{"table"}),
	}
	for _, table := range mutatedTables() {
		m.mutationSince.WithLabelValues(table).Set(0)
	}
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("failed")
	m.window.Set((time.Duration(days) * 24 * time.Hour).Seconds())
	return m
}

// Collectors returns the job's metrics, for the registry of the process
// that runs it: audittrail_writer_retention_runs_total{result},
// audittrail_writer_retention_last_success_timestamp_seconds,
// audittrail_writer_retention_window_seconds,
// audittrail_writer_oldest_partition_timestamp_seconds,
// audittrail_writer_retention_archive_failures_total and
// audittrail_writer_retention_mutation_pending_since_timestamp_seconds{table}.
func (e *Enforcer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.m.runs, e.m.lastSuccess, e.m.window, e.m.oldest, e.m.archiveFailures, e.m.mutationSince}
}

// observe records a run that ended at now with err; oldest is the oldest
// day partition (YYYYMMDD) it kept, empty when none.
func (m *metrics) observe(now time.Time, oldest string, err error) {
	if err != nil {
		m.runs.WithLabelValues("failed").Inc()
		return
	}
	m.runs.WithLabelValues("ok").Inc()
	m.lastSuccess.Set(float64(now.UnixMilli()) / 1000)
	day, perr := time.Parse("20060102", oldest)
	if perr != nil {
		day = now
	}
	m.oldest.Set(float64(day.Unix()))
}
