package trackingplan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refFanOut is a schema of levels definitions, each applying the next one
// fan times: checking one property runs fan^levels subschemas.
func refFanOut(levels, fan int) string {
	var defs []string
	for i := range levels {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf(`{"$ref":"#/$defs/d%d"},`, i+1), fan), ",")
		defs = append(defs, fmt.Sprintf(`"d%d":{"allOf":[%s]}`, i, refs))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"string"}`, levels))
	return `{"$defs":{` + strings.Join(defs, ",") + `},"properties":{"s":{"$ref":"#/$defs/d0"}}}`
}

// TestSchemasThatMultiplyTheWorkAreRefused: checking one event against a
// planned schema is bounded when the schema is saved. Before, a 1.5 KB
// schema whose definitions apply each other ten times over took 0.8 s per
// event (two more levels: over a minute), a 250 KB allOf of small patterns
// took 13 s over a 30 KB property, and a recursive reference applied
// several times per level grows with the event's depth; the forwarder
// checks every event of the workspace on one of its workers.
func TestSchemasThatMultiplyTheWorkAreRefused(t *testing.T) {
	patterns := `{"properties":{"s":{"allOf":[` + strings.TrimSuffix(strings.Repeat(`{"pattern":"a*b"},`, 14000), ",") + `]}}}`
	bigEnum := `{"properties":{"s":{"allOf":[` + strings.TrimSuffix(strings.Repeat(`{"enum":[`+strings.TrimSuffix(strings.Repeat(`1,`, 500), ",")+`]},`, 40), ",") + `]}}}`
	recursive := `{"$defs":{"t":{"allOf":[` + strings.TrimSuffix(strings.Repeat(`{"properties":{"a":{"$ref":"#/$defs/t"}}},`, 10), ",") + `]}},"properties":{"s":{"$ref":"#/$defs/t"}}}`
	for _, tc := range []struct{ name, schema, msg string }{
		{"ref fan-out 6x10", refFanOut(6, 10), "more than"},
		{"ref fan-out 9x10", refFanOut(9, 10), "more than"},
		{"14,000 patterns", patterns, "more than"},
		{"40 enums of 500", bigEnum, "more than"},
		{"recursive reference", recursive, "recursive"},
		{"reference to the root", `{"properties":{"s":{"$ref":"#"}}}`, "recursive"},
		{"ref fan-out 3x10", refFanOut(3, 10), ""},
		{"ordinary", `{"type":"object","required":["id"],"properties":{"id":{"type":"string","pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},` +
			`"role":{"enum":["owner","admin","member"]},"tags":{"type":"array","items":{"$ref":"#/$defs/tag"}}},"$defs":{"tag":{"type":"string","maxLength":64}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Plan{Events: map[string]PlanEvent{"Source Created": {Properties: json.RawMessage(tc.schema)}}}
			_, err := p.Compile()
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "events.Source Created.properties", fe.Field)
			require.Contains(t, fe.Message, tc.msg)
		})
	}
}
