package monitoring

// The Grafana dashboard, built with Grafana's typed builder so that it
// stays reviewable and in step with the metric names (the tests check
// every expression against the services' /metrics).

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DashboardUID is the dashboard's uid in Grafana.
const DashboardUID = "audittrail-overview"

// datasource is the panels' data source: the dashboard's variable, chosen
// when the dashboard is imported.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// query is one line of a panel: a PromQL expression and its legend.
type query struct{ expr, legend string }

// panel is one time series panel.
type panel struct {
	title, unit, description string
	queries                  []query
}

// row is a titled group of panels.
type row struct {
	title  string
	panels []panel
}

// Dashboard returns the audittrail dashboard as Grafana's JSON model.
func Dashboard() ([]byte, error) {
	b := dashboard.NewDashboardBuilder("audittrail").
		Uid(DashboardUID).
		Tags([]string{"audittrail"}).
		Description("Ingest, storage, forwarding, reads and retention of the audit trail. Alerts: deploy/monitoring/rules; runbook: deploy/monitoring/RUNBOOK.md.").
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus"))
	id := uint32(0)
	for _, r := range rows() {
		id++
		b = b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			b = b.WithPanel(timeseriesPanel(p).Id(id))
		}
	}
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build dashboard: %w", err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dashboard: %w", err)
	}
	return append(out, '\n'), nil
}

func timeseriesPanel(p panel) *timeseries.PanelBuilder {
	tp := timeseries.NewPanelBuilder().Title(p.title).Description(p.description).Unit(p.unit).
		Datasource(datasource).Height(8).Span(8).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	for i, q := range p.queries {
		tp = tp.WithTarget(prometheus.NewDataqueryBuilder().Datasource(datasource).
			RefId(string(rune('A' + i))).Expr(q.expr).LegendFormat(q.legend))
	}
	return tp
}

// quantiles is the p50 and p99 of a histogram, grouped by the labels in by
// (with le) and named with prefix.
func quantiles(metric, by, legend string) []query {
	group := "le"
	if by != "" {
		group = by + ", le"
	}
	q := func(phi, name string) query {
		return query{fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket[$__rate_interval])))", phi, group, metric), legend + name}
	}
	return []query{q("0.5", " p50"), q("0.99", " p99")}
}

func rows() []row {
	return []row{
		{"Ingest", []panel{
			{"Events received by result", "ops", "Events the gateway received (accepted, invalid, forbidden, rate_limited, failed).",
				[]query{{"sum by (result) (rate(audittrail_ingest_events_total[$__rate_interval]))", "{{result}}"}}},
			{"Ingest requests by status", "reqps", "5xx and 503 (busy, or Kafka unavailable) are alerted on.",
				[]query{{"sum by (code) (rate(audittrail_ingest_requests_total[$__rate_interval]))", "{{code}}"}}},
			{"Ingest slots in use", "short", "Requests holding one of the gateway's concurrency slots; full means 503 busy.",
				[]query{{"sum by (instance) (audittrail_ingest_slots_in_use)", "{{instance}}"}}},
		}},
		{"Writer", []panel{
			{"Writer lag per partition", "short", "Records behind the high watermark, at the last fetch.",
				[]query{{"max by (topic, partition) (audittrail_writer_consumer_lag)", "{{topic}}/{{partition}}"}}},
			{"Rows stored", "ops", "Rows ClickHouse acknowledged, and events not stored again because their id was stored.",
				[]query{{"sum(rate(audittrail_writer_rows_inserted_total[$__rate_interval]))", "inserted"},
					{"sum by (kind) (rate(audittrail_writer_duplicate_ids_total[$__rate_interval]))", "duplicate {{kind}}"},
					{"sum(rate(audittrail_writer_expired_events_total[$__rate_interval]))", "expired on arrival"}}},
			{"Batch size", "short", "Rows per insert.", quantiles("audittrail_writer_batch_rows", "", "rows")},
			{"Insert latency", "s", "Latency of successful inserts.", quantiles("audittrail_writer_insert_seconds", "", "insert")},
			{"Writer errors", "ops", "Failed inserts, offset commits and id registry calls (each is retried).",
				[]query{{"sum(rate(audittrail_writer_insert_errors_total[$__rate_interval]))", "insert"},
					{"sum(rate(audittrail_writer_commit_errors_total[$__rate_interval]))", "commit"},
					{"sum(rate(audittrail_writer_id_registry_errors_total[$__rate_interval]))", "id registry"}}},
			{"Writer dead letters", "short", "Records parked in the writer's dead-letter topic, by reason (dlq writer list).",
				[]query{{"sum by (reason) (increase(audittrail_writer_dead_letters_total[$__rate_interval]))", "{{reason}}"}}},
			{"Idempotency window reach", "s", "How far back each writer remembers ids, against the retention window.",
				[]query{{"min by (instance) (audittrail_writer_idempotency_window_reach_seconds)", "reach {{instance}}"},
					{"max(audittrail_writer_retention_window_seconds)", "retention window"}}},
			{"Assigned partitions", "short", "Partitions each writer owns in its group.",
				[]query{{"sum by (instance) (audittrail_writer_assigned_partitions)", "{{instance}}"}}},
		}},
		{"Forwarder", []panel{
			{"Forwarder lag per partition", "short", "Records behind the high watermark, at the last fetch.",
				[]query{{"max by (topic, partition) (audittrail_forwarder_consumer_lag)", "{{topic}}/{{partition}}"}}},
			{"Forwarder throughput", "ops", "Records read, events delivered to sources and alerts sent to webhooks.",
				[]query{{"sum(rate(audittrail_forwarder_records_read_total[$__rate_interval]))", "read"},
					{"sum(rate(audittrail_forwarder_events_forwarded_total[$__rate_interval]))", "forwarded"},
					{"sum(rate(audittrail_forwarder_alerts_sent_total[$__rate_interval]))", "alerts"}}},
			{"Delivery latency", "s", "From reading an event to its delivery acknowledgement.",
				quantiles("audittrail_forwarder_delivery_seconds", "", "delivery")},
			{"Delivery attempts by target and result", "ops", "ok, retry, rejected, refused; more than 20% failing is alerted on.",
				[]query{{"sum by (target, result) (rate(audittrail_forwarder_delivery_attempts_total[$__rate_interval]))", "{{target}} {{result}}"}}},
			{"Forwarder dead letters", "short", "Events parked in the forwarding dead-letter topic (dlq forwarder list).",
				[]query{{"sum by (target, reason) (increase(audittrail_forwarder_dead_letters_total[$__rate_interval]))", "{{target}} {{reason}}"}}},
			{"Held partitions and paused workspaces", "short", "Partitions held because a workspace's queue is full; workspaces whose target refuses the key or address.",
				[]query{{"sum(audittrail_forwarder_held_partitions)", "held partitions"},
					{"sum(audittrail_forwarder_paused_targets)", "paused workspaces"},
					{"sum(audittrail_forwarder_in_flight)", "in flight"}}},
			{"Events not forwarded, by reason", "ops", "Dropped by design: plan, filters, forwarding off, duplicates.",
				[]query{{"topk(10, sum by (reason) (rate(audittrail_forwarder_events_dropped_total[$__rate_interval])))", "{{reason}}"}}},
			{"Forwarded per workspace (top 10)", "ops", "Events delivered to each workspace's source; the first 100 workspaces with an outcome have their own series, the rest are \"other\".",
				[]query{{`topk(10, sum by (workspace) (rate(audittrail_forwarder_workspace_events_delivered_total{target="source"}[$__rate_interval])))`, "{{workspace}}"}}},
			{"Delivery latency per workspace (p95, slowest 10)", "s", "From reading an event to its delivery, per workspace.",
				[]query{{"topk(10, histogram_quantile(0.95, sum by (workspace, le) (rate(audittrail_forwarder_workspace_delivery_seconds_bucket[$__rate_interval]))))", "{{workspace}}"}}},
			{"Delivery failures per workspace (top 10)", "ops", "Retries, rejections, refusals and dead letters per workspace; a workspace failing for 15 minutes with nothing delivered is alerted on.",
				[]query{{"topk(10, sum by (workspace, result) (rate(audittrail_forwarder_workspace_delivery_failures_total[$__rate_interval])))", "{{workspace}} {{result}}"}}},
		}},
		{"Integrity log (sealer)", []panel{
			{"Leaves and checkpoints", "ops", "Leaves appended to the workspaces' logs, checkpoints signed, complete tiles noted.",
				[]query{{"sum(rate(audittrail_sealer_leaves_total[$__rate_interval]))", "leaves"},
					{"sum(rate(audittrail_sealer_checkpoints_total[$__rate_interval]))", "checkpoints"},
					{"sum(rate(audittrail_sealer_tiles_noted_total[$__rate_interval]))", "tiles noted"}}},
			{"Records sealed by outcome", "ops", "leaf, repeat (the id has a leaf), not_stored, undecodable; mismatch (a stored row differs from its record) is alerted on.",
				[]query{{"sum by (outcome) (rate(audittrail_sealer_records_total[$__rate_interval]))", "{{outcome}}"}}},
			{"Sealer errors by step", "ops", "Failed steps (retried); tampered (a stored log does not extend its signed checkpoint) is alerted on at once.",
				[]query{{"sum by (step) (rate(audittrail_sealer_errors_total[$__rate_interval]))", "{{step}}"}}},
			{"Records waiting to be sealed", "short", "Read and not yet sealed: most wait for the writer group's commits.",
				[]query{{"sum by (instance) (audittrail_sealer_records_waiting)", "{{instance}}"}}},
			{"Seal round latency", "s", "Time to seal one round (read back the rows, insert hashes and leaves).",
				quantiles("audittrail_sealer_seal_seconds", "", "seal")},
		}},
		{"Read API", []panel{
			{"API latency by route (p99)", "s", "Read API request latency by route.",
				[]query{{`histogram_quantile(0.99, sum by (route, le) (rate(audittrail_http_request_seconds_bucket{service="api"}[$__rate_interval])))`, "{{route}}"}}},
			{"API requests by status", "reqps", "5xx burning the 99.9% budget is alerted on.",
				[]query{{`sum by (code) (rate(audittrail_http_request_seconds_count{service="api"}[$__rate_interval]))`, "{{code}}"}}},
			{"CSV exports by result", "ops", "ok, not_recorded, failed.",
				[]query{{"sum by (result) (rate(audittrail_api_exports_total[$__rate_interval]))", "{{result}}"}}},
		}},
		{"Retention", []panel{
			{"Oldest stored day", "d", "Age of the oldest day partition against the retention window (it may reach the window and a day).",
				[]query{{"(time() - min(audittrail_writer_oldest_partition_timestamp_seconds)) / 86400", "oldest day"},
					{"max(audittrail_writer_retention_window_seconds) / 86400", "retention window"}}},
			{"Since the last retention run", "s", "Time since the retention job last completed (alerted on after 3 hours).",
				[]query{{"time() - max(audittrail_writer_retention_last_success_timestamp_seconds)", "since last success"}}},
			{"Retention runs", "short", "Runs of the retention job by result.",
				[]query{{"sum by (result) (increase(audittrail_writer_retention_runs_total[$__rate_interval]))", "{{result}}"}}},
		}},
	}
}
