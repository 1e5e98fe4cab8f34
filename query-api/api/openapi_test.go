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
	"github.com/audittrail/audittrail/query-api/settings"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/openapi"
)

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestRoutesMatchOpenAPI fails when a route the server registers is not in
// the OpenAPI document, or the document describes an operation the server
// does not have.
func TestRoutesMatchOpenAPI(t *testing.T) {
	e := httpserver.New(httpserver.Options{Name: "api", Reg: prometheus.NewRegistry()})
	New(Options{Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}}).Register(e)
	settings.Register(e, settings.Options{Verifier: auth.NewHMAC(secret)})
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
