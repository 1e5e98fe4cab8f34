package trackingplan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deepSchema is a JSON Schema nesting "properties" n objects deep.
func deepSchema(n int) string {
	return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
}

func planDoc(schema string) string {
	return `{"events":{"Source Created":{"properties":` + schema + `}}}`
}

// TestDecodeRefusesDocumentsBreakingTheBounds: settings documents obey the
// bounds of every contract document: no duplicate keys, at most 32 levels,
// at most 1,000 keys in one object, no control characters but tab and
// line breaks.
func TestDecodeRefusesDocumentsBreakingTheBounds(t *testing.T) {
	keys := make([]string, 1001)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":{}`, i)
	}
	for _, tc := range []struct {
		name, doc string
		into      func() any
		field     string // "" means accepted
		msg       string
	}{
		{"forwarding", `{"enabled":false,"target":{"url":"https://example.com"}}`, func() any { return &Forwarding{} }, "", ""},
		{"enabled twice", `{"enabled":true,"enabled":false}`, func() any { return &Forwarding{} }, "enabled", "duplicate key"},
		{"url twice", `{"target":{"url":"https://a.example","url":"https://b.example"}}`, func() any { return &Forwarding{} }, "target.url", "duplicate key"},
		{"filter key twice", `{"filters":[{"name":"a","name":"b","action":"drop"}]}`, func() any { return &Filters{} }, "filters[0].name", "duplicate key"},
		{"plan event twice", `{"events":{"Source Created":{},"Source Created":{}}}`, func() any { return &Plan{} }, "events.Source Created", "duplicate key"},
		// Keys match field names exactly: another case is an unknown field,
		// never a second value for the same field.
		{"enabled in another case", `{"enabled":false,"ENABLED":true}`, func() any { return &Forwarding{} }, "ENABLED", "unknown field"},
		{"url in another case", `{"target":{"url":"https://a.example","URL":"https://b.example"}}`, func() any { return &Forwarding{} }, "URL", "unknown field"},
		{"webhook in another case", `{"enabled":true,"webhook_url":"https://a.example","events":["x"],"Webhook_URL":"https://b.example"}`, func() any { return &Alerts{} }, "Webhook_URL", "unknown field"},
		{"only another case", `{"Filters":[]}`, func() any { return &Filters{} }, "Filters", "unknown field"},
		{"schema keyword twice", planDoc(`{"type":"object","type":"string"}`), func() any { return &Plan{} }, "events.Source Created.properties.type", "duplicate key"},
		{"deep schema", planDoc(deepSchema(20)), func() any { return &Plan{} }, "events.Source Created.properties" + strings.Repeat(".properties.a", 14) + ".properties", "nested more than 32 levels"},
		{"1,500-level schema", planDoc(deepSchema(1500)), func() any { return &Plan{} }, "events.Source Created.properties" + strings.Repeat(".properties.a", 14) + ".properties", "nested more than 32 levels"},
		{"1,001 keys", planDoc(`{"properties":{` + strings.Join(keys, ",") + `}}`), func() any { return &Plan{} }, "events.Source Created.properties.properties", "more than 1000 keys"},
		{"NUL in a name", `{"filters":[{"name":"a\u0000","action":"drop"}]}`, func() any { return &Filters{} }, "filters[0].name", "control character U+0000"},
		{"newline in a condition", "{\"filters\":[{\"name\":\"a\",\"action\":\"drop\",\"if\":\"event == 'x' ||\\n event == 'y'\"}]}", func() any { return &Filters{} }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := Decode([]byte(tc.doc), tc.into())
			require.Less(t, time.Since(start), time.Second, "refused quickly")
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field, fe.Error())
			require.Contains(t, fe.Message, tc.msg)
		})
	}
}

// TestDeepSchemasAreRefusedBeforeCompiling: a plan built without Decode
// (e.g. read back from the settings topic) obeys the same bounds, and a
// 1,500-level schema is refused at once instead of taking seconds to
// compile.
func TestDeepSchemasAreRefusedBeforeCompiling(t *testing.T) {
	ok := Plan{Events: map[string]PlanEvent{"Source Created": {Properties: json.RawMessage(deepSchema(15))}}}
	_, err := ok.Compile()
	require.NoError(t, err, "31 levels compile")

	for _, n := range []int{16, 1500} {
		p := Plan{Events: map[string]PlanEvent{"Source Created": {Properties: json.RawMessage(deepSchema(n))}}}
		start := time.Now()
		_, err := p.Compile()
		require.Less(t, time.Since(start), time.Second, "refused quickly")
		var fe *FieldError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, "events.Source Created.properties"+strings.Repeat(".properties.a", 16), fe.Field)
		require.Contains(t, fe.Message, "nested more than 32 levels")
	}
	dup := Plan{Events: map[string]PlanEvent{"Source Created": {Properties: json.RawMessage(`{"type":"object","type":"string"}`)}}}
	_, err = dup.Compile()
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "events.Source Created.properties.type", fe.Field)
}

func TestFilterPropertyPathsAreBounded(t *testing.T) {
	path := func(n int) string { return strings.TrimSuffix(strings.Repeat("a.", n), ".") }
	f := Filters{Filters: []Filter{{Name: "x", Action: ActionDropProperties, Properties: []string{path(32)}}}}
	_, err := f.Compile()
	require.NoError(t, err)
	f.Filters[0].Properties = []string{"ok", path(33)}
	_, err = f.Compile()
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "filters[0].properties[1]", fe.Field)
}

// TestFilterBoundsAreInCharacters: a filter's name and condition are
// bounded in characters, as the OpenAPI document's maxLength counts, and a
// property list (even empty) is refused on an action without properties.
func TestFilterBoundsAreInCharacters(t *testing.T) {
	check := func(doc string) error {
		var f Filters
		if err := Decode([]byte(doc), &f); err != nil {
			return err
		}
		if _, err := f.Compile(); err != nil {
			return err
		}
		return f.ValidateNew(nil)
	}
	filter := func(name, cond, extra string) string {
		n, _ := json.Marshal(name)
		c, _ := json.Marshal(cond)
		return `{"filters":[{"name":` + string(n) + `,"enabled":true,"if":` + string(c) + `,"action":"drop"` + extra + `}]}`
	}
	wide := strings.Repeat("é", MaxFilterNameLen) // 400 bytes
	require.NoError(t, check(filter(wide, "true", "")))
	requireField(t, check(filter(wide+"é", "true", "")), "filters[0].name")
	requireField(t, check(filter("\u00a0\u3000 ", "true", "")), "filters[0].name")
	cond := "'" + strings.Repeat("é", MaxExprLen-len("'' == event")) + "' == event"
	require.NoError(t, check(filter("a", cond, "")), "4,096 characters, 8,000 bytes")
	requireField(t, check(filter("a", "'é"+cond, "")), "filters[0].if")
	requireField(t, check(filter("a", "true", `,"properties":[]`)), "filters[0].properties")
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, field, fe.Field, fe.Message)
}
