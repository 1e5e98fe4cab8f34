package event

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
)

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const goodEvent = `{
  "id": "evt_1",
  "workspace_id": "ws_1",
  "event": "Warehouses Disabled",
  "timestamp": "2026-11-25T10:00:00.123456789+01:00",
  "actor": {"type": "user", "id": "usr_1", "name": "Alice Example", "email": "alice@example.com"},
  "resource": {"id": "wh_1", "name": "Snowflake prod"},
  "changes": {"enabled": {"old": true, "new": false}},
  "context": {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "request_id": "req-1"},
  "properties": {"reason": "cost"}
}`

func policy() Policy { return Policy{Now: func() time.Time { return fixedNow }} }

func TestDecodeAndValidateGoodEvent(t *testing.T) {
	e, err := Decode([]byte(goodEvent))
	require.NoError(t, err)
	require.NoError(t, policy().Validate(&e))

	require.Equal(t, "evt_1", e.ID)
	require.Equal(t, "Warehouses", e.Category, "category is derived from the catalogue")
	require.Equal(t, "warehouse", e.Resource.Type, "resource type defaults from the catalogue")
	require.Equal(t, time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC), e.Timestamp)
	require.Equal(t, time.UTC, e.Timestamp.Location())
	require.JSONEq(t, `{"old": true, "new": false}`, mustJSON(t, e.Changes["enabled"]))
	require.JSONEq(t, `{"reason": "cost"}`, string(e.Properties))
}

func TestRoundTrip(t *testing.T) {
	e, err := Decode([]byte(goodEvent))
	require.NoError(t, err)
	require.NoError(t, policy().Validate(&e))
	e.ReceivedAt = fixedNow

	b, err := Marshal(&e)
	require.NoError(t, err)
	back, err := Decode(b)
	require.NoError(t, err)
	require.JSONEq(t, string(e.Properties), string(back.Properties))
	back.Properties = e.Properties
	require.Equal(t, e, back)

	appended, err := Encode([]byte("x"), &e)
	require.NoError(t, err)
	require.Equal(t, append([]byte("x"), b...), appended)
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, body, field, msg string
	}{
		{"syntax", `{"event": `, "", "invalid JSON"},
		{"trailing data", `{"event": "Source Created"} {}`, "", "after the event"},
		{"unknown field", `{"evnt": "Source Created"}`, "evnt", "unknown field"},
		{"restored is the read API's", `{"restored": true}`, "restored", "unknown field"},
		{"wrong type", `{"workspace_id": 5}`, "workspace_id", "must be a string"},
		{"nested wrong type", `{"actor": {"id": true}}`, "actor.id", "must be a string"},
		{"actor not object", `{"actor": "alice"}`, "actor", "must be an object"},
		{"bad timestamp", `{"timestamp": "yesterday"}`, "timestamp", "RFC 3339"},
		{"bad received_at", `{"received_at": "2026-13-01T00:00:00Z"}`, "received_at", "RFC 3339"},
		{"properties array", `{"properties": [1]}`, "properties", "JSON object"},
		{"changes not object", `{"changes": [1]}`, "changes", "must be an object"},
		{"change unknown key", `{"changes": {"a": {"before": 1}}}`, "before", "unknown field"},
		{"invalid utf-8", "{\"actor\": {\"name\": \"a\xffb\"}}", "", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Len(t, ve.Fields, 1, ve.Error())
			require.Equal(t, tt.field, ve.Fields[0].Field, ve.Error())
			require.Contains(t, ve.Fields[0].Message, tt.msg)
		})
	}
}

func TestValidateErrorsNameTheField(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		mutate func(e *Event)
		field  string
	}{
		{"workspace missing", func(e *Event) { e.WorkspaceID = "" }, "workspace_id"},
		{"workspace bad chars", func(e *Event) { e.WorkspaceID = "ws 1; DROP" }, "workspace_id"},
		{"id too long", func(e *Event) { e.ID = strings.Repeat("x", 129) }, "id"},
		{"id bad chars", func(e *Event) { e.ID = "a/b" }, "id"},
		{"event missing", func(e *Event) { e.Event = "" }, "event"},
		{"event unknown", func(e *Event) { e.Event = "Source Exploded" }, "event"},
		{"event wrong case", func(e *Event) { e.Event = "source created" }, "event"},
		{"category mismatch", func(e *Event) { e.Category = "Sources" }, "category"},
		{"timestamp missing", func(e *Event) { e.Timestamp = time.Time{} }, "timestamp"},
		{"timestamp ancient", func(e *Event) { e.Timestamp = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }, "timestamp"},
		{"timestamp far future", func(e *Event) { e.Timestamp = fixedNow.Add(25 * time.Hour) }, "timestamp"},
		{"actor type missing", func(e *Event) { e.Actor.Type = "" }, "actor.type"},
		{"actor type bad", func(e *Event) { e.Actor.Type = "robot" }, "actor.type"},
		{"actor id missing", func(e *Event) { e.Actor.ID = "" }, "actor.id"},
		{"actor name too long", func(e *Event) { e.Actor.Name = long }, "actor.name"},
		{"actor name invalid utf8", func(e *Event) { e.Actor.Name = "a\xffb" }, "actor.name"},
		{"actor name control", func(e *Event) { e.Actor.Name = "a\x1bb" }, "actor.name"},
		{"actor email", func(e *Event) { e.Actor.Email = "alice" }, "actor.email"},
		{"resource type", func(e *Event) { e.Resource.Type = "Ware House" }, "resource.type"},
		{"context ip", func(e *Event) { e.Context.IP = "999.1.1.1" }, "context.ip"},
		{"changes key empty", func(e *Event) { e.Changes = map[string]Change{"": {}} }, "changes"},
		{"properties not object", func(e *Event) { e.Properties = json.RawMessage(`"x"`) }, "properties"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(goodEvent))
			require.NoError(t, err)
			tt.mutate(&e)
			err = policy().Validate(&e)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.field, ve.Fields[0].Field, ve.Error())
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	var e Event
	err := policy().Validate(&e)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	var fields []string
	for _, f := range ve.Fields {
		fields = append(fields, f.Field)
	}
	require.Equal(t, []string{"workspace_id", "event", "timestamp", "actor.type", "actor.id"}, fields)
}

func TestCustomEventsPolicy(t *testing.T) {
	base := func(name string) Event {
		e, err := Decode([]byte(goodEvent))
		require.NoError(t, err)
		e.Event = name
		e.Resource.Type = ""
		return e
	}
	e := base("Report Schedule Modified")
	require.Error(t, policy().Validate(&e), "custom events are off by default")

	p := policy()
	p.CustomEventWorkspaces = map[string]bool{"ws_1": true}
	e = base("Report Schedule Modified")
	require.NoError(t, p.Validate(&e))
	require.Equal(t, "Custom", e.Category)

	e = base("Report Schedule Modified")
	e.WorkspaceID = "ws_2"
	require.Error(t, p.Validate(&e), "only the listed workspace may send custom events")

	p = policy()
	p.AllowCustomEvents = true
	e = base("report schedule modified")
	require.Error(t, p.Validate(&e), "custom names must follow the catalogue's style")
}

// TestSchemaAgreesWithGoValidation compiles the published JSON Schema and
// checks that it accepts what Validate accepts and rejects shape errors.
func TestSchemaAgreesWithGoValidation(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	require.NoError(t, err)
	require.NoError(t, c.AddResource("event.schema.json", doc))
	sch, err := c.Compile("event.schema.json")
	require.NoError(t, err)

	validate := func(s string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		require.NoError(t, err)
		return sch.Validate(v)
	}
	require.NoError(t, validate(goodEvent))

	e, err := Decode([]byte(goodEvent))
	require.NoError(t, err)
	require.NoError(t, policy().Validate(&e))
	e.ReceivedAt = fixedNow
	out, err := Marshal(&e)
	require.NoError(t, err)
	require.NoError(t, validate(string(out)), "what the API returns matches the schema")

	for _, good := range []string{
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u", "name": "a\tb\nc\r"}, "resource": {"name": "x\ny"}, "changes": {"a\tb": {"new": 1}}, "context": {"user_agent": "u\ta"}, "properties": {"k\n": "v"}}`,
	} {
		require.NoError(t, validate(good), good)
		ev, err := Decode([]byte(good))
		require.NoError(t, err)
		require.NoError(t, policy().Validate(&ev), good)
	}

	for _, bad := range []string{
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u\tv"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u", "email": "a\n@example.com"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u", "name": "\u001b[2J"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "resource": {"name": "\u0085"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "context": {"request_id": "r\r"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "changes": {"\u0000": {"new": 1}}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "properties": {"\u0007": 1}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "properties": ` + manyKeys(1001) + `}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z"}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "nope", "actor": {"type": "user", "id": "u"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "robot", "id": "u"}}`,
		`{"workspace_id": "ws 1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}}`,
		`{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T10:00:00Z", "actor": {"type": "user", "id": "u"}, "extra": 1}`,
	} {
		require.Error(t, validate(bad), bad)
		_, decErr := Decode([]byte(bad))
		var ev Event
		if decErr == nil {
			ev, _ = Decode([]byte(bad))
			decErr = policy().Validate(&ev)
		}
		require.Error(t, decErr, "Go validation rejects it too: %s", bad)
	}
}

func TestHandWrittenMatchersAgreeWithPatterns(t *testing.T) {
	for _, v := range []string{"", "a", "A9", "ws_1", "evt-1:2.3", "_x", "-x", ".x", "a b", "a/b", "é", "a\x00", "x_", "ab__c", "Ab", "a1_b"} {
		require.Equal(t, idPattern.MatchString(v), validID(v), "id %q", v)
		require.Equal(t, resourceTypePattern.MatchString(v), validResourceType(v), "resource type %q", v)
	}
}

func FuzzHandWrittenMatchers(f *testing.F) {
	f.Add("ws_1")
	f.Add("a\x7fé\tb")
	f.Add("a\u0085\u00a0\r\n")
	f.Fuzz(func(t *testing.T, v string) {
		require.Equal(t, idPattern.MatchString(v), validID(v))
		require.Equal(t, resourceTypePattern.MatchString(v), validResourceType(v))
		if utf8.ValidString(v) {
			c0 := func(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }
			require.Equal(t, strings.ContainsFunc(v, c0), hasControl(v, identifier), "%q", v)
			require.Equal(t, strings.ContainsFunc(v, func(r rune) bool { return c0(r) && r != '\t' && r != '\n' && r != '\r' }), hasControl(v, freeText), "%q", v)
		}
		require.Equal(t, !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r >= 0x7f }), printableASCII(v), "%q", v)
	})
}

func TestPrintableASCII(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "ws_1": true, " ~": true, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)": true,
		"abcdefg\x7f": false, "abcdefgh\x1f": false, "é": false, "abcdefghé": false, "\xff\xffabcdefgh": false,
		"abcdefgh\x00ijklmnop": false, "abcdefgh\x80": false,
	} {
		require.Equal(t, want, printableASCII(v), "%q", v)
	}
}

func TestNewIDIsUniqueAndValid(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		require.False(t, seen[id])
		seen[id] = true
		require.Regexp(t, idPattern, id)
	}
}

// FuzzDecode checks that no input crashes the decoder, that every accepted
// event re-encodes to JSON that decodes to the same event, and that strings
// that pass validation are valid UTF-8.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodEvent))
	f.Add([]byte(`{"batch": []}`))
	f.Add([]byte(`{"changes": {"a": {"old": null}}}`))
	f.Add([]byte(`{"actor": {"name": "\ud800"}}`))
	f.Add([]byte("{\"actor\": {\"name\": \"\xff\"}}"))
	f.Add([]byte(`{"timestamp": "2026-11-25T10:00:00.1234567891Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			return
		}
		if policy().Validate(&e) != nil {
			return
		}
		for _, s := range []string{e.WorkspaceID, e.Event, e.Actor.ID, e.Actor.Name, e.Resource.Name} {
			require.True(t, utf8.ValidString(s))
		}
		b, err := Marshal(&e)
		require.NoError(t, err)
		back, err := Decode(b)
		require.NoError(t, err, string(b))
		require.NoError(t, policy().Validate(&back))
		require.Equal(t, e.ID, back.ID)
		require.Equal(t, e.Event, back.Event)
		require.True(t, e.Timestamp.Equal(back.Timestamp))
		require.Equal(t, e.Actor, back.Actor)
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// FuzzParseTimeMatchesTimeParse holds ParseTime's fast path to
// time.Parse: the same time in UTC, or an error from both.
func FuzzParseTimeMatchesTimeParse(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T10:00:00Z", "2026-11-25T10:00:00.123Z", "2026-11-25T10:00:00.123456789Z", "2026-11-25T10:00:00.1234567891Z",
		"2024-02-29T23:59:59.5Z", "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-31T24:00:00Z", "2026-12-31T23:60:00Z",
		"2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "2026-11-25T10:00:00+02:00", "2026-11-25t10:00:00z", "2026-11-25T10:00:00.Z",
		"2026-11-25T10:00:00,5Z", "+026-11-25T10:00:00Z", "2026-1-25T10:00:00Z", "2026-11-25T10:00:00", "", "2026-11-25 10:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		want, wantErr := time.Parse(time.RFC3339Nano, s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("ParseTime(%q): error %v, time.Parse: %v", s, err, wantErr)
		}
		if err == nil && got != want.UTC() {
			t.Fatalf("ParseTime(%q) = %v, time.Parse: %v", s, got, want.UTC())
		}
	})
}

func TestParseTimeFastPath(t *testing.T) {
	for s, want := range map[string]time.Time{
		"2026-11-25T10:00:00Z":           time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		"2026-11-25T10:00:00.5Z":         time.Date(2026, 11, 25, 10, 0, 0, 500_000_000, time.UTC),
		"2026-11-25T10:00:00.123456789Z": time.Date(2026, 11, 25, 10, 0, 0, 123_456_789, time.UTC),
		"2024-02-29T23:59:59.000001Z":    time.Date(2024, 2, 29, 23, 59, 59, 1000, time.UTC),
	} {
		got, ok := parseUTC(s)
		require.True(t, ok, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"2023-02-29T00:00:00Z", "2026-11-25T10:00:00+00:00", "2026-11-25T10:00:00.1234567891Z", "2026-11-25T10:00:60Z"} {
		_, ok := parseUTC(s)
		require.False(t, ok, s)
	}
}
