package forward

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// TestProcessDropReasonsKeepTheirOrder: the hard-failures rule comes
// before the plan, so an unplanned failure that will be retried is
// dropped as not final, and an unplanned event of a blocking plan as
// unplanned (without its properties being read: they may be anything).
func TestProcessDropReasonsKeepTheirOrder(t *testing.T) {
	cp, err := trackingplan.Plan{UnplannedEvents: trackingplan.Block,
		Events: map[string]trackingplan.PlanEvent{"Source Created": {Properties: json.RawMessage(`{"required": ["kind"]}`)}}}.Compile()
	require.NoError(t, err)
	tests := []struct {
		name, event, props string
		hardOnly           bool
		want               string
	}{
		{"unplanned", "Source Deleted", `{"kind": 1}`, false, dropUnplanned},
		{"unplanned, properties not an object", "Source Deleted", `[1, 2]`, false, dropUnplanned},
		{"unplanned, hard failures only", "Source Deleted", `{}`, true, dropUnplanned},
		{"unplanned failure, not final", "Audience Run Failed", `{"attempt": 1, "max_attempts": 3}`, true, dropNotFinal},
		{"unplanned failure, final", "Audience Run Failed", `{"attempt": 3, "max_attempts": 3}`, true, dropUnplanned},
		{"unplanned failure, rule off", "Audience Run Failed", `{"attempt": 1, "max_attempts": 3}`, false, dropUnplanned},
		{"planned, violating", "Source Created", `{}`, false, ""},
		{"planned", "Source Created", `{"kind": "x"}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := &Workspace{ID: "ws_1", Plan: cp}
			ws.Forwarding.HardFailuresOnly = tt.hardOnly
			ev := mkEvent("ws_1", 1, tt.event, tt.props)
			out, err := Process(ws, &ev)
			require.NoError(t, err)
			require.Equal(t, tt.want, out.Dropped)
			require.Equal(t, tt.want == "", out.Call != nil)
		})
	}
}
