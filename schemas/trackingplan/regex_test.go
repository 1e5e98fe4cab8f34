package trackingplan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRegexesThatExpandAreRefused: a short pattern with counted
// repetition, such as (.*){1000}b, compiles to thousands of instructions
// and takes seconds on a 30 KB property, which neither the condition's cost
// budget (it charges by the pattern's length) nor the plan sees. Such
// patterns, and patterns that are not string literals, are refused when
// the setting is saved; ordinary patterns compile.
func TestRegexesThatExpandAreRefused(t *testing.T) {
	for _, tc := range []struct{ expr, msg string }{
		{`properties.s.matches('(.*){1000}b')`, "regular expression"},
		{`matches(properties.s, '(.*){1000}b')`, "regular expression"},
		{`resource.name.matches('a{1000}')`, "regular expression"},
		{`event.matches('x') && properties.s.matches('(a{30}){30}')`, "regular expression"},
		{`['a', event].exists(x, x.matches('(.*){1000}b'))`, "regular expression"},
		{`properties.s.matches(properties.re)`, "string literal"},
		{`properties.s.matches(event + '.*')`, "string literal"},
		{`event.matches('^Source (Created|Deleted)$')`, ""},
		{`actor.email.matches('(?i)^[^@]+@example\\.com$')`, ""},
		{`resource.id.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')`, ""},
		{`properties.s.matches('(')`, "missing closing )"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := CompileExpr(tc.expr)
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.msg)
		})
	}

	for _, tc := range []struct{ schema, msg string }{
		{`{"type":"object","properties":{"s":{"type":"string","pattern":"(.*){1000}b"}}}`, "regular expression"},
		{`{"type":"object","patternProperties":{"(.*){1000}b":{}}}`, "regular expression"},
		{`{"type":"object","properties":{"s":{"type":"string","pattern":"^[A-Z]{2}-\\d{4}$"}}}`, ""},
	} {
		t.Run(tc.schema, func(t *testing.T) {
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

// TestAcceptedRegexesStayCheapOnLargeProperties: the largest pattern the
// rule accepts for its length runs over a 30 KB property quickly.
func TestAcceptedRegexesStayCheapOnLargeProperties(t *testing.T) {
	prg, err := CompileExpr(`properties.s.matches('(.*){8}b')`)
	require.NoError(t, err)
	vars := map[string]any{"event": "x", "category": "c", "actor": map[string]string{},
		"resource": map[string]string{}, "context": map[string]string{},
		"properties": map[string]any{"s": strings.Repeat("a", 30000)}}
	start := time.Now()
	_, _, _ = prg.Eval(vars)
	require.Less(t, time.Since(start), time.Second, "a refused pattern such as (.*){1000}b took 1.5 s")
}
