package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// BenchmarkPreview500 decides 500 events of about 1 KB with a plan of two
// schemas and five filters, as one preview does.
func BenchmarkPreview500(b *testing.B) {
	plan := trackingplan.Plan{OnViolation: trackingplan.Block, Events: map[string]trackingplan.PlanEvent{
		"Source Created":      {Properties: json.RawMessage(`{"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string", "maxLength": 64}, "tags": {"type": "array", "items": {"type": "string"}}}}`)},
		"Warehouses Disabled": {Properties: json.RawMessage(`{"type": "object", "properties": {"reason": {"type": "string"}}}`)},
	}}
	cp, err := plan.Compile()
	require.NoError(b, err)
	var fl []trackingplan.Filter
	for i, cond := range []string{
		"event == 'Source Created' && has(properties.test)",
		"actor.email.endsWith('@example.com') && event == 'Warehouses Disabled'",
		"has(properties.tags) && properties.tags.exists(t, t == 'internal')",
		"resource.id.startsWith('tmp_')",
		"context.ip == '10.0.0.1'",
	} {
		fl = append(fl, trackingplan.Filter{Name: fmt.Sprint("f", i), Enabled: true, If: cond, Action: trackingplan.ActionDrop})
	}
	cf, err := trackingplan.Filters{Filters: fl}.Compile()
	require.NoError(b, err)
	p := trackingplan.Pipeline{Plan: cp, Filters: cf}
	events := make([]event.Event, 500)
	for i := range events {
		name := []string{"Source Created", "Warehouses Disabled", "Destination Created"}[i%3]
		events[i] = event.Event{ID: fmt.Sprintf("evt_%04d", i), Event: name,
			Actor:    event.Actor{Type: "user", ID: "usr_1", Email: "ada@example.com"},
			Resource: event.Resource{ID: fmt.Sprintf("src_%d", i)},
			Properties: json.RawMessage(fmt.Sprintf(`{"kind": "web", "tags": ["a", "b", "internal"], "note": %q}`,
				fmt.Sprintf("%0900d", i)))}
	}
	b.ReportAllocs()
	for b.Loop() {
		out := runPreview(context.Background(), p, events)
		if out.Events != 500 {
			b.Fatal(out.Events)
		}
	}
}

// BenchmarkPreviewCostliest decides 500 events of about 32 KiB (the
// gateway's largest: each a list of 6,000 numbers) with the costliest
// filters a workspace may save: three conditions each estimated at the
// per-condition limit, so together at MaxFilterSetCost, and each running
// into its runtime limit on every event. Without the 5 s bound
// (previewEvalTimeout) this is the longest a preview's deciding could take;
// ms/event is what one event costs at most.
func BenchmarkPreviewCostliest(b *testing.B) {
	cond := "has(properties.l) && properties.l.exists(a, properties.l.exists(c, a == c + 1000000))"
	var fl []trackingplan.Filter
	for i := range 3 {
		fl = append(fl, trackingplan.Filter{Name: fmt.Sprint("f", i), Enabled: true, If: cond, Action: trackingplan.ActionDrop})
	}
	filters := trackingplan.Filters{Filters: fl}
	require.NoError(b, filters.ValidateNew(nil), "a workspace may save these filters")
	cf, err := filters.Compile()
	require.NoError(b, err)
	p := trackingplan.Pipeline{Filters: cf}
	list := make([]string, 6000)
	for i := range list {
		list[i] = fmt.Sprint(i % 10000)
	}
	props := json.RawMessage(`{"l": [` + strings.Join(list, ",") + `]}`)
	require.Greater(b, len(props), 28<<10)
	events := make([]event.Event, MaxPreviewEvents)
	for i := range events {
		events[i] = event.Event{ID: fmt.Sprintf("evt_%04d", i), Event: "Source Created",
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Properties: props}
	}
	b.ReportAllocs()
	for b.Loop() {
		out := runPreview(context.Background(), p, events)
		if out.Events != MaxPreviewEvents || out.FilterErrors == 0 {
			b.Fatal(out.Events, out.FilterErrors)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*MaxPreviewEvents), "ms/event")
}

// BenchmarkPreviewLargeDraftPlan checks and compiles a draft plan of about
// 1.4 MiB, as a preview does before reading events (within its slot, and
// compiled once: checking a plan is compiling it): every
// catalogue event with a schema of 150 string properties, each with a
// pattern and a length bound (20 distinct patterns in all).
func BenchmarkPreviewLargeDraftPlan(b *testing.B) {
	benchmarkDraftPlan(b, largeDraftPlan(b, func(_, i int) string {
		return fmt.Sprintf(`^(a|b|c)[a-z]{1,%d}(x|y)*$`, i%20+1)
	}))
}

// BenchmarkPreviewLargeDraftPlanDistinctPatterns is
// BenchmarkPreviewLargeDraftPlan with every pattern of the plan distinct
// (other letters, the same instructions), so that none is compiled once
// for several properties: the costliest plan of this shape.
func BenchmarkPreviewLargeDraftPlanDistinctPatterns(b *testing.B) {
	var triples, pairs []string
	for x := 'a'; x <= 'z'; x++ {
		for y := x + 1; y <= 'z'; y++ {
			pairs = append(pairs, fmt.Sprintf("%c|%c", x, y))
			for z := y + 1; z <= 'z'; z++ {
				triples = append(triples, fmt.Sprintf("%c|%c|%c", x, y, z))
			}
		}
	}
	seen := map[string]bool{}
	plan := largeDraftPlan(b, func(e, i int) string {
		k := e*150 + i
		p := fmt.Sprintf(`^(%s)[a-z]{1,%d}(%s)*$`, triples[k%len(triples)], i%20+1, pairs[k/len(triples)])
		require.False(b, seen[p], "distinct")
		seen[p] = true
		return p
	})
	benchmarkDraftPlan(b, plan)
}

// largeDraftPlan is a plan of every catalogue event, each with a schema of
// 150 string properties with the pattern pattern(event, property) and a
// length bound.
func largeDraftPlan(tb testing.TB, pattern func(e, i int) string) []byte {
	var events []string
	for e, ev := range catalogue.All() {
		var props []string
		for i := range 150 {
			props = append(props, fmt.Sprintf(`"p%d": {"type": "string", "pattern": %q, "maxLength": 64}`, i, pattern(e, i)))
		}
		schema := `{"type": "object", "properties": {` + strings.Join(props, ",") + `}}`
		events = append(events, fmt.Sprintf(`%q: {"properties": %s}`, ev.Name, schema))
	}
	plan := []byte(`{"events": {` + strings.Join(events, ",") + `}}`)
	require.Less(tb, len(plan), MaxBody)
	return plan
}

func benchmarkDraftPlan(b *testing.B, plan []byte) {
	b.ReportAllocs()
	for b.Loop() {
		require.NoError(b, checkDocument(trackingplan.KindPlan, plan))
		_, cp, err := parsePlan(plan, nil)
		require.NoError(b, err)
		require.NotNil(b, cp)
	}
	b.ReportMetric(float64(len(plan))/(1<<20), "MiB")
}
