package event

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// boundsEvent is a valid event with extra top-level members (JSON text after a
// comma) and the given actor, resource and properties.
func boundsEvent(extra, actorName, resourceName, props string) string {
	return `{"id":"evt_1","workspace_id":"ws_1","event":"Source Created","timestamp":"2026-11-25T10:00:00Z",` +
		`"actor":{"type":"user","id":"usr_1","name":` + actorName + `},"resource":{"id":"src_1","name":` + resourceName + `},` +
		`"properties":` + props + extra + `}`
}

func nestedProps(depth int) string {
	// depth counts the event itself: properties is level 2.
	return strings.Repeat(`{"a":`, depth-2) + `{}` + strings.Repeat(`}`, depth-2)
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":1`, i)
	}
	return b.String() + "}"
}

// TestContractBounds covers the rules every event obeys, through both
// decoding paths and validation: the field named in the error, or none.
func TestContractBounds(t *testing.T) {
	ok := func(extra, props string) string { return boundsEvent(extra, `"Alice"`, `"Snowflake"`, props) }
	for _, tc := range []struct {
		name, in string
		field    string // "" means valid
		msg      string
	}{
		{"valid", ok(``, `{"reason":"cost"}`), "", ""},
		{"32 levels", ok(``, nestedProps(32)), "", ""},
		{"33 levels in properties", ok(``, nestedProps(33)), "properties" + strings.Repeat(".a", 31), "nested more than 32 levels"},
		{"33 levels in changes", ok(`,"changes":{"x":{"new":`+strings.Repeat("[", 30)+strings.Repeat("]", 30)+`}}`, `{}`), "changes.x.new" + strings.Repeat("[0]", 29), "nested more than 32 levels"},
		{"10,000 levels", ok(``, `{"a":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), "properties.a" + strings.Repeat("[0]", 30), "nested more than 32 levels"},
		{"1,000 keys", ok(``, manyKeys(1000)), "", ""},
		{"1,001 keys", ok(``, manyKeys(1001)), "properties", "more than 1000 keys"},
		{"1,001 keys deeper", ok(``, `{"x":`+manyKeys(1001)+`}`), "properties.x", "more than 1000 keys"},
		{"duplicate workspace_id", ok(`,"workspace_id":"ws_2"`, `{}`), "workspace_id", "duplicate key"},
		{"duplicate actor id", boundsEvent(``, `"Alice","id":"usr_2"`, `"S"`, `{}`), "actor.id", "duplicate key"},
		{"duplicate in properties", ok(``, `{"a":{"b":1,"b":2}}`), "properties.a.b", "duplicate key"},
		{"duplicate escaped", ok(``, `{"a":1,"\u0061":2}`), "properties.a", "duplicate key"},
		{"duplicate change", ok(`,"changes":{"x":{"new":1},"x":{"new":2}}`, `{}`), "changes.x", "duplicate key"},
		{"duplicate in a change value", ok(`,"changes":{"x":{"new":{"k":1,"k":2}}}`, `{}`), "changes.x.new.k", "duplicate key"},
		{"duplicate new", ok(`,"changes":{"x":{"new":1,"new":2}}`, `{}`), "changes.x.new", "duplicate key"},

		{"tab newline cr in resource.name", boundsEvent(``, `"Alice"`, `"a\tb\nc\r"`, `{}`), "", ""},
		{"newline in actor.name", boundsEvent(``, `"Alice\nExample"`, `"S"`, `{}`), "", ""},
		{"tab in properties and changes", ok(`,"changes":{"a\tb":{"new":"x\ny"}}`, `{"k\t":"v\r\n"}`), "", ""},
		{"ESC in resource.name", boundsEvent(``, `"Alice"`, `"\u001b[31m"`, `{}`), "resource.name", "U+001B"},
		{"NUL in actor.name", boundsEvent(``, `"a\u0000"`, `"S"`, `{}`), "actor.name", "U+0000"},
		{"C1 in actor.name", boundsEvent(``, "\"a\u0085\"", `"S"`, `{}`), "actor.name", "U+0085"},
		{"DEL in resource.name", boundsEvent(``, `"Alice"`, "\"a\x7f\"", `{}`), "resource.name", "U+007F"},
		{"NUL in properties", ok(``, `{"k":"a\u0000b"}`), "properties.k", "U+0000"},
		{"ESC in a properties key", ok(``, `{"x":{"\u001b":1}}`), "properties.x", "U+001B"},
		{"NUL in a change key", ok(`,"changes":{"\u0000":{"new":1}}`, `{}`), "changes", "U+0000"},
		{"C1 in a change value", ok(`,"changes":{"a":{"old":["\u0090"]}}`, `{}`), "changes.a.old[0]", "U+0090"},
		{"backspace in properties", ok(``, `{"k":"\b"}`), "properties.k", "U+0008"},
		{"user agent with tab", ok(`,"context":{"user_agent":"Mozilla\t5.0"}`, `{}`), "", ""},

		{"tab in workspace_id", strings.Replace(ok(``, `{}`), `"ws_1"`, `"ws\t1"`, 1), "workspace_id", ""},
		{"newline in id", strings.Replace(ok(``, `{}`), `"evt_1"`, `"evt\n1"`, 1), "id", ""},
		{"tab in actor.id", strings.Replace(ok(``, `{}`), `"usr_1"`, `"usr\t1"`, 1), "actor.id", "control characters"},
		{"C1 in actor.id", strings.Replace(ok(``, `{}`), `"usr_1"`, "\"usr\u00851\"", 1), "actor.id", "U+0085"},
		{"newline in resource.id", strings.Replace(ok(``, `{}`), `"src_1"`, `"src\n1"`, 1), "resource.id", "control characters"},
		{"newline in event name", strings.Replace(ok(``, `{}`), `"Source Created"`, `"Source Created\n"`, 1), "event", ""},
		{"tab in email", boundsEvent(``, `"A","email":"a\t@example.com"`, `"S"`, `{}`), "actor.email", "control characters"},
		{"newline in ip", ok(`,"context":{"ip":"203.0.113.9\n"}`, `{}`), "context.ip", ""},
		{"carriage return in request id", ok(`,"context":{"request_id":"r\r1"}`, `{}`), "context.request_id", "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			e, err := Decode(data)
			_, _, storedErr := DecodeStored(data)
			require.Equal(t, err, storedErr, "both decoding paths agree")
			if err == nil {
				err = policy().Validate(&e)
			}
			if tc.field == "" {
				require.NoError(t, err)
				out, merr := Marshal(&e)
				require.NoError(t, merr)
				require.NoError(t, CheckJSON(out), "an accepted event encodes within the bounds")
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Fields[0].Field, ve.Error())
			require.Contains(t, ve.Fields[0].Message, tc.msg)
		})
	}
}

// TestCheckJSONCoversEventsBuiltInGo checks the encoding of an event built
// in Go (as the emitter does): raw properties and changes obey the same
// bounds.
func TestCheckJSONCoversEventsBuiltInGo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(e *Event)
		field string
	}{
		{"deep properties", func(e *Event) { e.Properties = []byte(nestedProps(33)) }, "properties" + strings.Repeat(".a", 31)},
		{"duplicate in properties", func(e *Event) { e.Properties = []byte(`{"a":1,"a":2}`) }, "properties.a"},
		{"NUL in properties", func(e *Event) { e.Properties = []byte(`{"a":"\u0000"}`) }, "properties.a"},
		{"deep change", func(e *Event) {
			e.Changes = map[string]Change{"x": {Old: []byte(strings.Repeat("[", 30) + strings.Repeat("]", 30))}}
		}, "changes.x.old" + strings.Repeat("[0]", 29)},
		{"ESC in resource.name", func(e *Event) { e.Resource.Name = "\x1b" }, "resource.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode([]byte(goodEvent))
			require.NoError(t, err)
			tc.edit(&e)
			out, err := Marshal(&e)
			require.NoError(t, err)
			err = CheckJSON(out)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Fields[0].Field, ve.Error())
		})
	}
}
