package settings

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver/httpservertest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// Valid settings every hostile case starts from: a refused body must leave
// them exactly as they are.
var seeds = map[string]string{
	trackingplan.KindForwarding: `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "wk_secret_abcd"}}`,
	trackingplan.KindPlan:       `{"events": {"Source Created": {"properties": {"type": "object"}}}, "unplanned_events": "block"}`,
	trackingplan.KindFilters:    `{"filters": [{"name": "no tokens", "enabled": true, "if": "actor.type == 'access_token'", "action": "drop"}]}`,
	trackingplan.KindAlerts:     `{"enabled": true, "webhook_url": "https://hooks.example.com/services/T0/B0/secretpath", "events": ["Source Created"]}`,
}

func (f *fixture) seed(t *testing.T) {
	t.Helper()
	for _, kind := range trackingplan.Kinds {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/"+kind, f.owner, seeds[kind])
		require.Equal(t, 200, code, "%s: %v", kind, body)
	}
}

// snapshot copies the stored records.
func (f *fixture) snapshot() map[string]string {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	out := make(map[string]string, len(f.store.data))
	for k, v := range f.store.data {
		out[k] = string(v)
	}
	return out
}

func (f *fixture) emitted() int {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	return len(f.rec.events)
}

// goInternals matches what an error message must never show: Go type
// names, Go's JSON decoder wording, file URLs and paths of the server.
// A pointer type is a star, a package and a dotted name (*settings.Target):
// a quoted request cut short ("*abc...") is not one.
var goInternals = regexp.MustCompile(`\b(trackingplan|jsonschema|json|settings|event|echo|http)\.[A-Z]|\bGo (struct|value)|map\[|\[\]|\*[a-z]+\.[A-Za-z]|\.go\b|unmarshal`)

func requireCleanMessage(t *testing.T, msg string) {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NotContains(t, msg, wd)
	require.NotContains(t, msg, strings.TrimPrefix(wd, "/"), "the working directory, even without its leading slash")
	require.NotRegexp(t, goInternals, msg)
}

func TestRefusedSettingsChangeNothing(t *testing.T) {
	ctrl := []string{"\\u0000", "\\t", "\\n", "\\r", "\\u001b", "\\u007f", "\\u0085", "\\u009f"}
	type tc struct{ kind, body, field string }
	cases := []tc{
		// A body that is not an object never resets settings to defaults.
		{"forwarding", `null`, ""},
		{"forwarding", ` null `, ""},
		{"tracking-plan", `null`, ""},
		{"destination-filters", `null`, ""},
		{"alerts", `null`, ""},
		{"forwarding", `[]`, ""},
		{"alerts", `"x"`, ""},
		{"destination-filters", `42`, ""},
		{"tracking-plan", `true`, ""},
		{"forwarding", ``, ""},
		{"forwarding", `{}{}`, ""},
		// An empty condition is a mistake, not "every event".
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "  \n ", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": false, "action": "sample", "percent": 5}]}`, "filters[0].if"},
		// Properties only where the action uses them.
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "drop", "properties": ["email"]}]}`, "filters[0].properties"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "sample", "percent": 5, "properties": ["email"]}]}`, "filters[0].properties"},
		// Event names outside the catalogue.
		{"tracking-plan", `{"events": {"Source Createdd": {}}}`, "events.Source Createdd"},
		{"tracking-plan", `{"events": {"Source Created": {}, "source created": {}}}`, "events.source created"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "event == 'Source Createdd'", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "'Nope Happened' == event", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "event != \"Nope Happened\"", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "actor.type == 'user' && event in ['Source Created', 'Nope Happened']", "action": "drop"}]}`, "filters[0].if"},
		{"alerts", `{"enabled": true, "webhook_url": "https://hooks.example.com/x", "events": ["Source Created", "Nope Happened"]}`, "events[1]"},
		{"alerts", `{"enabled": false, "events": ["nope"]}`, "events[0]"},
	}
	// Conditions each within their own cost limit whose estimated costs add
	// up to more than the filter set's: the filter that crosses it is named.
	var costly []string
	for i := range 50 {
		costly = append(costly, fmt.Sprintf(`{"name": "f%d", "enabled": true, "action": "drop", "if": "[1,2,3,4,5,6,7,8,9,10].all(x,[1,2,3,4,5,6,7,8,9,10].all(y,[1,2,3,4,5,6,7,8,9,10].all(z,[1,2,3,4,5,6,7,8,9,10].all(w,x+y+z+w>0))))"}`, i))
	}
	cases = append(cases, tc{"destination-filters", `{"filters": [` + strings.Join(costly, ",") + `]}`, "filters[3].if"})
	for _, c := range ctrl {
		cases = append(cases,
			tc{"forwarding", `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "wk_` + c + `_secret"}}`, "target.write_key"},
			tc{"forwarding", `{"enabled": false, "target": {"url": "https://api.example.com", "write_key": "` + c + `"}}`, "target.write_key"},
			tc{"alerts", `{"enabled": false, "events": ["Source` + c + `Created"]}`, "events[0]"},
		)
	}
	for _, c := range cases {
		t.Run(c.kind+" "+c.body, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t)
			before, events := f.snapshot(), f.emitted()
			code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/"+c.kind, f.owner, c.body)
			require.Equal(t, 400, code, "%v", body)
			require.Equal(t, c.field, errField(body), "%v", body)
			requireCleanMessage(t, mustJSON(body))
			require.Equal(t, before, f.snapshot(), "a refused body changes nothing")
			require.Equal(t, events, f.emitted(), "a refused body is not recorded")
		})
	}
}

func TestCatalogueNamesAndPropertyActionsAreAccepted(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ kind, body string }{
		{"tracking-plan", `{"events": {"Source Created": {}, "User Added via SSO": {"properties": {"type": "object"}}}}`},
		{"destination-filters", `{"filters": [
			{"name": "a", "enabled": true, "if": "event in ['Source Created', 'User Removed'] || event.startsWith('Nope')", "action": "drop"},
			{"name": "b", "enabled": true, "if": "true", "action": "drop_properties", "properties": ["email"]},
			{"name": "c", "enabled": true, "if": "properties.name == 'Nope Happened'", "action": "sample", "percent": 50}]}`},
		{"alerts", `{"enabled": false, "events": ["User Removed"]}`},
		{"forwarding", `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "wk-Ünïcode_key/+="}}`},
	} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/"+c.kind, f.owner, c.body)
		require.Equal(t, 200, code, "%s: %v", c.kind, body)
	}
}

func TestTheAlertWebhookCanBeRemoved(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	stored := func() trackingplan.Alerts {
		var a trackingplan.Alerts
		_, err := Load(f.store, "ws_1", trackingplan.KindAlerts, &a)
		require.NoError(t, err)
		return a
	}
	// Omitted or masked: kept.
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": true, "events": ["Source Created", "User Removed"]}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, "https://hooks.example.com/services/T0/B0/secretpath", stored().WebhookURL)
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner,
		`{"enabled": true, "webhook_url": "https://hooks.example.com/****path", "events": ["Source Created"]}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, "https://hooks.example.com/services/T0/B0/secretpath", stored().WebhookURL)

	// Removing it while alerts are on is refused; turned off, it goes.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": true, "webhook_url": "", "events": ["Source Created"]}`)
	require.Equal(t, 400, code, body)
	require.Equal(t, "webhook_url", errField(body))
	n := f.emitted()
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": false, "webhook_url": "", "events": ["Source Created"]}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, "", body["webhook_url"])
	require.Empty(t, stored().WebhookURL)
	require.Equal(t, n+1, f.emitted())
	last := f.rec.events[n]
	require.JSONEq(t, `"https://hooks.example.com/****path"`, string(last.Changes["webhook_url"].Old))
	require.JSONEq(t, `""`, string(last.Changes["webhook_url"].New))

	code, body = f.do(t, "GET", "/v1/workspaces/ws_1/alerts", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, "", body["webhook_url"])
	// null removes it too.
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": false, "webhook_url": "https://hooks.example.com/a/b/c"}`)
	require.Equal(t, 200, code)
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": false, "webhook_url": null}`)
	require.Equal(t, 200, code, body)
	require.Empty(t, stored().WebhookURL)
}

func TestSchemaErrorsShowNoPathsOrGoTypes(t *testing.T) {
	f := newFixture(t)
	for _, schema := range []string{
		`{"type": 12}`,
		`{"$ref": "#/nope"}`,
		`{"$ref": "other.json"}`,
		`{"$ref": "http://169.254.169.254/latest"}`,
		`{"$id": "file:///etc/passwd", "$ref": "x.json"}`,
		`{"$schema": "http://example.com/nope"}`,
		`{"pattern": "(["}`,
		`{"type": "object", "properties": {"a": {"minimum": "x"}}}`,
		`[1]`,
		`"x"`,
	} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/tracking-plan", f.owner,
			`{"events": {"Source Created": {"properties": `+schema+`}}}`)
		require.Equal(t, 400, code, "%s: %v", schema, body)
		require.Equal(t, "events.Source Created.properties", errField(body))
		msg := body["error"].(map[string]any)["message"].(string)
		requireCleanMessage(t, msg)
		require.NotContains(t, msg, "/etc/passwd")
		require.NotContains(t, msg, "plan.json", "the compiler's internal name of the schema")
		t.Log(schema, "=>", msg)
	}
	for _, body := range []string{
		`{"enabled": "yes"}`,
		`{"events": "x"}`,
		`{"enabled": false, "events": [1]}`,
		`{"enabled": {"a": 1}}`,
	} {
		code, out := f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, body)
		require.Equal(t, 400, code, out)
		requireCleanMessage(t, mustJSON(out))
	}
	code, out := f.do(t, "PUT", "/v1/workspaces/ws_1/destination-filters", f.owner,
		`{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "sample", "percent": "abc"}]}`)
	require.Equal(t, 400, code, out)
	requireCleanMessage(t, mustJSON(out))
}

// A body over the limit is answered 413, never with a reset, also for a
// client that writes its whole body before it reads the answer.
func TestOversizedBodiesGet413NeverAReset(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	before := f.snapshot()
	addr := strings.TrimPrefix(f.srv.URL, "http://")
	for _, size := range []int{MaxBody + 1, 3 * MaxBody, MaxBody + 24<<20} {
		resp, err := httpservertest.SendWhole(t, addr, http.MethodPut, "/v1/workspaces/ws_1/destination-filters", f.owner, []byte(`{"filters": [], "x": "`), size)
		require.NoError(t, err, "size %d: the client reads an answer, not a reset", size)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "size %d: %s", size, b)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		require.Equal(t, "too_large", m["error"].(map[string]any)["code"])
	}

	// Go's client, which reads the answer while it still sends, too.
	big := strings.Repeat("a", 2*MaxBody)
	req, err := http.NewRequest(http.MethodPut, f.srv.URL+"/v1/workspaces/ws_1/tracking-plan", strings.NewReader(big))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+f.owner)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, before, f.snapshot())
}

// Custom event names follow the deployment's policy, as at ingest: allowed
// for the whole deployment or for listed workspaces, in the catalogue's
// style.
func TestCustomEventNamesFollowTheDeploymentPolicy(t *testing.T) {
	bodies := map[string]string{
		"tracking-plan":       `{"events": {"Report Schedule Modified": {}}}`,
		"destination-filters": `{"filters": [{"name": "x", "enabled": true, "if": "event == 'Report Schedule Modified'", "action": "drop"}]}`,
		"alerts":              `{"enabled": false, "events": ["Report Schedule Modified"]}`,
	}
	badStyle := map[string]string{
		"tracking-plan":       `{"events": {"report schedule modified": {}}}`,
		"destination-filters": `{"filters": [{"name": "x", "enabled": true, "if": "event in ['report_modified']", "action": "drop"}]}`,
		"alerts":              `{"enabled": false, "events": ["REPORT!"]}`,
	}
	for _, c := range []struct {
		name   string
		policy event.Policy
		ok     map[string]bool // workspace: custom names accepted
	}{
		{"catalogue only", event.Policy{}, map[string]bool{"ws_1": false, "ws_3": false}},
		{"listed workspace", event.Policy{CustomEventWorkspaces: map[string]bool{"ws_3": true}}, map[string]bool{"ws_1": false, "ws_3": true}},
		{"whole deployment", event.Policy{AllowCustomEvents: true}, map[string]bool{"ws_1": true, "ws_3": true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Events = c.policy })
			tok := token(t, map[string]string{"ws_1": "owner", "ws_3": "owner"})
			for ws, allowed := range c.ok {
				for kind, body := range bodies {
					code, out := f.do(t, "PUT", "/v1/workspaces/"+ws+"/"+kind, tok, body)
					if allowed {
						require.Equal(t, 200, code, "%s %s: %v", ws, kind, out)
					} else {
						require.Equal(t, 400, code, "%s %s: %v", ws, kind, out)
						require.Contains(t, out["error"].(map[string]any)["message"], "custom events are not enabled")
					}
					code, out = f.do(t, "PUT", "/v1/workspaces/"+ws+"/"+kind, tok, badStyle[kind])
					require.Equal(t, 400, code, "%s %s: %v", ws, kind, out)
				}
			}
		})
	}
}

// Found by the contract run: a null under an empty key is named (the
// path "events[0]."), not a crash, and a value of the wrong kind is named
// by its kind, never echoed with the rest of the body.
func TestMalformedSettingsAreNamedNotEchoed(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ body, field, message string }{
		{`{"events": [{"": null}]}`, "events[0].", "must not be null; leave the field out for its default"},
		{`{"enabled": 80899, "webhook_url": null, "events": [{"\udb45\udea9": false, "": null}]}`, "events[0].", "must not be null; leave the field out for its default"},
		{`{"enabled": 80899, "webhook_url": null}`, "enabled", "must be a boolean, not a number"},
		{`{"events": [{}], "webhook_url": "https://hooks.example.com/x"}`, "events.0", "must be a string, not an object"},
		{`{"enabled": "yes", "events": ["Warehouses Disabled"]}`, "enabled", "must be a boolean, not a string"},
	} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, c.body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", c.body, body)
		e := body["error"].(map[string]any)
		require.Equal(t, c.field, e["field"], c.body)
		require.Equal(t, c.message, e["message"], c.body)
	}
}

// Found by the contract run: a choice of the tracking plan given as ""
// is refused (decoded, it would read as the default, as if left out).
func TestEmptyPlanChoicesAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, field := range []string{"unplanned_events", "unplanned_properties", "on_violation"} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/tracking-plan", f.owner, `{"events": {}, "`+field+`": ""}`)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", field, body)
		require.Equal(t, field, body["error"].(map[string]any)["field"])
	}
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/tracking-plan", f.owner, `{"events": {}, "on_violation": "block"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "allow", body["unplanned_events"], "left out: the default")
}
