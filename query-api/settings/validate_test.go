package settings

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/openapi"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

func TestValidateConditionAnswersAsAPutWould(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name, body string
		valid      bool
		message    string // part of the message
	}{
		{"event name", `{"if": "event == 'Source Created'"}`, true, ""},
		{"properties", `{"if": "has(properties.kind) && properties.kind == 'web'"}`, true, ""},
		{"true", `{"if": "true"}`, true, ""},
		{"syntax error", `{"if": "event =="}`, false, "Syntax error"},
		{"not a bool", `{"if": "event"}`, false, "must evaluate to a bool"},
		{"unknown variable", `{"if": "user == 'x'"}`, false, "undeclared reference"},
		{"unknown event", `{"if": "event == 'Nothing Ever Happened'"}`, false, "Nothing Ever Happened"},
		{"blank", `{"if": "  "}`, false, "required"},
		{"regex from the event", `{"if": "event.matches(category)"}`, false, "string literal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/destination-filters/validate", f.owner, tt.body)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, tt.valid, body["valid"], body)
			if !tt.valid {
				require.Contains(t, body["message"], tt.message)
				require.Nil(t, body["field"], "the condition itself is the subject")
			} else {
				require.Nil(t, body["message"])
			}
		})
	}
	for _, tt := range []struct{ name, body, field string }{
		{"no condition", `{}`, "if"},
		{"null condition", `{"if": null}`, "if"},
		{"not a string", `{"if": true}`, "if"},
		{"too long", `{"if": "` + strings.Repeat("a", 4097) + `"}`, "if"},
		{"unknown field", `{"if": "true", "action": "drop"}`, "action"},
		{"not an object", `"true"`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/destination-filters/validate", f.owner, tt.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, tt.field, errField(body), body)
		})
	}
	code, _ := f.do(t, "POST", "/v1/workspaces/ws_1/destination-filters/validate", f.owner, `{"if": "`+strings.Repeat("a", 70_000)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	code, _ = f.do(t, "POST", "/v1/workspaces/ws_2/destination-filters/validate", f.owner, `{"if": "true"}`)
	require.Equal(t, http.StatusForbidden, code, "members may not")
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	require.Empty(t, f.rec.events, "validating records nothing")
	require.Empty(t, f.store.data, "and stores nothing")
}

func TestValidateSchemaAnswersAsAPutWould(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name, body   string
		valid        bool
		field, inMsg string
	}{
		{"schema", `{"event": "Source Created", "properties": {"type": "object", "properties": {"kind": {"type": "string"}}}}`, true, "", ""},
		{"no schema", `{"event": "Source Created"}`, true, "", ""},
		{"bad keyword value", `{"event": "Source Created", "properties": {"type": "object", "properties": {"a": {"minimum": "x"}}}}`, false, "properties", "minimum"},
		{"outside reference", `{"event": "Source Created", "properties": {"$ref": "other.json"}}`, false, "properties", "only references inside the schema"},
		{"unknown event", `{"event": "Nothing Ever Happened", "properties": {}}`, false, "event", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/tracking-plan/validate", f.owner, tt.body)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, tt.valid, body["valid"], body)
			if !tt.valid {
				require.Equal(t, tt.field, body["field"], body)
				require.Contains(t, body["message"], tt.inMsg)
			}
		})
	}
	for _, tt := range []struct{ name, body, field string }{
		{"no event", `{"properties": {}}`, "event"},
		{"blank event", `{"event": " "}`, "event"},
		{"long event", `{"event": "` + strings.Repeat("a", 201) + `"}`, "event"},
		{"unknown field", `{"event": "Source Created", "schema": {}}`, "schema"},
		{"array", `[]`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/tracking-plan/validate", f.owner, tt.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, tt.field, errField(body), body)
		})
	}
}

func TestValidateBoundsCountCharacters(t *testing.T) {
	f := newFixture(t)
	// 4,096 characters of three bytes each: the request is not refused;
	// the condition (over 4,096 bytes) is answered as not valid.
	long := `"` + strings.Repeat("é", 4094) + `"`
	code, body := f.do(t, "POST", "/v1/workspaces/ws_1/destination-filters/validate", f.owner, `{"if": `+jsonString(long)+`}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, false, body["valid"])
	// Every character written as a JSON escape still fits the body bound.
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/destination-filters/validate", f.owner,
		`{"if": "`+strings.Repeat(`\ud83d\ude00`, 4096)+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	// A schema breaking a document bound is a schema that is not valid.
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/tracking-plan/validate", f.owner,
		`{"event": "Source Created", "properties": {"a\u0001": {}}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, false, body["valid"])
	require.Contains(t, body["field"], "properties")
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/tracking-plan/validate", f.owner, `{"event": "Source\u0001Created"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "event", errField(body))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDocumentedPreviewAndValidateBoundsAreTheServers holds the bounds in
// schemas/openapi/openapi.json to the server's constants.
func TestDocumentedPreviewAndValidateBoundsAreTheServers(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	body := func(path string) map[string]map[string]any {
		var op struct {
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Properties map[string]map[string]any `json:"properties"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		}
		require.NoError(t, json.Unmarshal(doc.Paths["/v1/workspaces/{workspace_id}/"+path]["post"], &op), path)
		return op.RequestBody.Content["application/json"].Schema.Properties
	}
	require.EqualValues(t, trackingplan.MaxExprLen, body("destination-filters/validate")["if"]["maxLength"])
	require.EqualValues(t, 200, body("tracking-plan/validate")["event"]["maxLength"])
	require.EqualValues(t, MaxPreviewEvents, body("forwarding/preview")["limit"]["maximum"])
	require.EqualValues(t, MaxPreviewEvents, body("forwarding/preview")["limit"]["default"])
}
