package api

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/settings"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/openapi"
)

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestRoutesMatchOpenAPI fails when a route the server registers is not in
// the OpenAPI document, or the document describes an operation the server
// does not have.
func TestRoutesMatchOpenAPI(t *testing.T) {
	e := httpserver.New(httpserver.Options{Name: "api", Reg: prometheus.NewRegistry()})
	New(Options{Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}}).Register(e)
	settings.Register(e, settings.Options{Verifier: auth.NewHMAC(secret), Recent: store.New(nil, "db", 1, nil)})
	// The HTML page and its assets are not API: not in the document.
	page := echo.New()
	web.Register(page)
	pageRoutes := map[string]bool{}
	for _, r := range page.Routes() {
		pageRoutes[r.Method+" "+r.Path] = true
	}
	web.Register(e)

	routes := map[string]bool{}
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			continue // echo's own not-found and any-method handlers
		}
		if pageRoutes[r.Method+" "+r.Path] {
			continue
		}
		routes[strings.ToLower(r.Method)+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options":
				documented[method+" "+path] = true
			}
		}
	}
	require.Equal(t, sorted(routes), sorted(documented), "echo routes (left) and schemas/openapi/openapi.json (right) disagree")
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestServesOpenAPI(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	status, body := get(t, srv, "/openapi.json", "")
	require.Equal(t, 200, status)
	require.Equal(t, "3.0.3", body["openapi"])
}

// TestQueryParametersMatchOpenAPI fails when the query parameters an
// endpoint accepts and those the OpenAPI document lists for it disagree, or
// the documented page size bounds are not the ones enforced.
func TestQueryParametersMatchOpenAPI(t *testing.T) {
	type param struct {
		Ref    string `json:"$ref"`
		Name   string `json:"name"`
		In     string `json:"in"`
		Schema struct {
			Default *int `json:"default"`
			Maximum *int `json:"maximum"`
		} `json:"schema"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]param `json:"parameters"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	resolve := func(p param) param {
		if p.Ref == "" {
			return p
		}
		r, ok := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
		require.True(t, ok, "unresolved %s", p.Ref)
		return r
	}
	const ws = "/v1/workspaces/{workspace_id}"
	for path, accepted := range map[string][]string{
		ws + "/audit-events":        append(append([]string{}, filterParams...), pageParams...),
		ws + "/audit-events.csv":    filterParams,
		ws + "/audit-events/facets": filterParams,
		ws + "/audit-events/{id}":   nil,
		"/v1/catalogue":             nil,
	} {
		raw, ok := doc.Paths[path]["get"]
		require.True(t, ok, "GET %s is not documented", path)
		var op, item struct {
			Parameters []param `json:"parameters"`
		}
		require.NoError(t, json.Unmarshal(raw, &op))
		if raw, ok := doc.Paths[path]["parameters"]; ok {
			require.NoError(t, json.Unmarshal(raw, &item.Parameters))
		}
		var documented []string
		for _, p := range append(item.Parameters, op.Parameters...) {
			if p = resolve(p); p.In == "query" {
				documented = append(documented, p.Name)
				if p.Name == "limit" {
					require.Equal(t, DefaultLimit, *p.Schema.Default, "documented default limit")
					require.Equal(t, MaxLimit, *p.Schema.Maximum, "documented maximum limit")
				}
			}
		}
		require.ElementsMatch(t, accepted, documented, "GET %s: accepted query parameters (left) and the document (right) disagree", path)
	}
}

// TestDocumentedBoundsAreTheServers holds the document's bounds of the
// query parameters to the ones the server enforces.
func TestDocumentedBoundsAreTheServers(t *testing.T) {
	var doc struct {
		Components struct {
			Parameters map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"parameters"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	params := doc.Components.Parameters
	cursor := params["cursor"].Schema["anyOf"].([]any)[0].(map[string]any) // or empty
	require.Equal(t, store.CursorPattern, cursor["pattern"])
	require.EqualValues(t, 148, cursor["maxLength"])
	require.EqualValues(t, search.MaxLen, params["q"].Schema["maxLength"])
	require.EqualValues(t, MaxLimit, params["limit"].Schema["maximum"])
	for _, name := range []string{"category", "actor_id", "resource_type", "resource_id"} {
		require.EqualValues(t, event.MaxNameLen, params[name].Schema["maxLength"], name)
	}
	// The longest cursor: the largest timestamp and a 128-character id.
	longest := store.Cursor{TimestampNs: store.MaxCursorNs, ID: "e" + strings.Repeat("1", 127)}.Encode()
	require.Len(t, longest, 148)
}
