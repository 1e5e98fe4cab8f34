package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

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
