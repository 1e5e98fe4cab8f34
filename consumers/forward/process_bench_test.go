package forward

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// BenchmarkProcess measures the per-event pipeline (tracking plan of 20
// events, 5 filters, encoding) that each delivery worker runs.
func BenchmarkProcess(b *testing.B) {
	plan := trackingplan.Plan{Events: map[string]trackingplan.PlanEvent{}, UnplannedEvents: "block", UnplannedProperties: "omit"}
	for i := range 19 {
		plan.Events[fmt.Sprintf("Thing %d Created", i)] = trackingplan.PlanEvent{Properties: json.RawMessage(`{"type": "object"}`)}
	}
	plan.Events["Source Created"] = trackingplan.PlanEvent{Properties: json.RawMessage(`{"type": "object",
		"properties": {"kind": {"type": "string"}, "count": {"type": "integer"}, "region": {"type": "string"}, "debug": {}}, "required": ["kind"]}`)}
	cp, err := plan.Compile()
	require.NoError(b, err)
	var f trackingplan.Filters
	require.NoError(b, trackingplan.Decode([]byte(`{"filters": [
		{"name": "a", "enabled": true, "if": "actor.type == 'access_token'", "action": "drop"},
		{"name": "b", "enabled": true, "if": "has(properties.debug)", "action": "drop_properties", "properties": ["debug"]},
		{"name": "c", "enabled": true, "if": "has(properties.region) && properties.region.startsWith('eu')", "action": "allow_properties", "properties": ["kind", "region"]},
		{"name": "d", "enabled": true, "if": "has(properties.count) && properties.count > 1000000", "action": "drop"},
		{"name": "e", "enabled": true, "if": "resource.id.endsWith('7')", "action": "sample", "percent": 50}]}`), &f))
	cf, err := f.Compile()
	require.NoError(b, err)
	ws := &Workspace{ID: "ws_1", Plan: cp, Filters: cf}
	ev := mkEvent("ws_1", 1, "Source Created", `{"kind": "http", "count": 3, "region": "us-east-1", "debug": {"x": 1}, "extra": true}`)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		out, err := Process(ws, &ev)
		if err != nil || out.Call == nil {
			b.Fatalf("dropped: %+v %v", out, err)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}
