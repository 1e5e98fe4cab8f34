package sealer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/internal/config"
)

type metrics struct {
	leaves, reclaimed, checkpoints, tiles prometheus.Counter
	readBack, sampled, audited            *prometheus.CounterVec
	records                               *prometheus.CounterVec
	errors                                *prometheus.CounterVec
	waiting, yielding                     prometheus.Gauge
	sealSeconds                           prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_sealer_leaves_total", Help: "Leaves appended to the workspaces' logs."}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_sealer_leaves_reclaimed_total", Help: "Leaf rows stored again at the index a crash left with stored hashes but no leaf row."}),
		readBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_sealer_records_read_back_total",
			Help: "Records whose stored row was read back from the events table by key (a read of the events table's key columns), by reason: absent (not in the offsets record audit_event_offsets: stored before migration 9, without " + config.WriterRecordOffsets.Name + ", or older than the record keeps), unvalidated (this sealer's validation refuses the record), other_key and received_at (the offsets row differs from the record: changed in ClickHouse, also counted as outcome mismatch), duplicate (a duplicate whose id has no leaf yet)."},
			[]string{"reason"}),
		sampled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_sealer_rows_sampled_total",
			Help: "Stored rows of new leaves read back at random (up to " + config.SealerSample.Name + " a read, a read a second at most) and compared with the leaf sealed from their Kafka record, by result: match, altered (the stored row differs: changed in ClickHouse; an alert), absent (no stored row visible), later_copy (the same event stored again later: an identical resend the writer's id window forgot), skipped (not read: left out while a read ran longer than its pace), thinned (not read: left out of the uniform choice between two paced reads)."},
			[]string{"result"}),
		audited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_sealer_leaves_audited_total",
			Help: "Sealed leaves of the logs in memory read back at random (" + config.SealerAudit.Name + " every 10 s) with their level-0 stored hash and their event's stored row, by result: match, altered (the parts disagree: the event or the log changed in ClickHouse; an alert), absent (a part is not stored: expired, or not visible)."},
			[]string{"result"}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_sealer_checkpoints_total", Help: "Checkpoints signed and stored."}),
		tiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_sealer_tiles_noted_total", Help: "Complete tiles whose event times were signed (tile notes)."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_sealer_records_total",
			Help: "Records sealed, by outcome: leaf (a new leaf), repeat (its event's id already had one), not_stored (the writer did not store it), undecodable, mismatch (a stored row read back from the events table differs from the record: not sealed; or the offsets record's row differs from the record: read back; an alert)."},
			[]string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_sealer_errors_total", Help: "Failed steps (each is retried or superseded), by step: seal, offsets, checkpoint, tile (tile notes), publish, commit, sample (the read-back of a round's sampled rows), audit (a pass of the background audit), fenced (a stored log changed under this sealer), tampered (a stored log does not extend its signed checkpoint: alert)."},
			[]string{"step"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_sealer_records_waiting", Help: "Records read and not yet sealed (most wait for the writer group's commits)."}),
		yielding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_sealer_yielding", Help: "1 while the writer group lags " + config.SealerYieldLag.Name + " records or more behind the sealer's partitions and the sealer seals one round every 5 s, else 0."}),
		sealSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audittrail_sealer_seal_seconds", Help: "Time to seal one round of records.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
	}
	// Every outcome and step is exported from the start (as 0), so alerts
	// and dashboards see the series before the first one happens.
	for _, o := range []string{"leaf", "repeat", "not_stored", "undecodable", "mismatch"} {
		m.records.WithLabelValues(o)
	}
	for _, r := range readBackReasons {
		m.readBack.WithLabelValues(r)
	}
	for _, r := range sampleResults {
		m.sampled.WithLabelValues(r)
	}
	for _, r := range []string{sampleMatch, sampleAltered, sampleAbsent} {
		m.audited.WithLabelValues(r)
	}
	for _, s := range []string{"seal", "offsets", "checkpoint", "tile", "publish", "commit", "fenced", "tampered", "sample", "audit"} {
		m.errors.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.leaves, m.readBack, m.sampled, m.audited, m.reclaimed, m.checkpoints, m.tiles, m.records, m.errors, m.waiting, m.yielding, m.sealSeconds)
	}
	return m
}
