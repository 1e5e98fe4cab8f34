// Package web_test tests the Audit Trail page from outside: how it is
// served (security headers, assets), that its scripts and markup agree with
// each other and with the API's routes and OpenAPI document, and that the
// page's calls match the endpoints' contracts.
package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/web"
)

func get(t *testing.T, e *echo.Echo, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestPageIsServedWithSecurityHeaders(t *testing.T) {
	e := echo.New()
	web.Register(e)
	for _, target := range []string{"/", "/?ws=ws_1&event=Source+Created", "/assets/app.js", "/assets/app.css", "/assets/icon.svg", "/page/features.json"} {
		rec := get(t, e, target)
		require.Equal(t, http.StatusOK, rec.Code, target)
		require.Equal(t, web.ContentSecurityPolicy, rec.Header().Get("Content-Security-Policy"), target)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), target)
		require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"), target)
	}
	require.Contains(t, web.ContentSecurityPolicy, "script-src 'self';")
	require.NotContains(t, web.ContentSecurityPolicy, "unsafe-inline")

	rec := get(t, e, "/")
	require.Contains(t, rec.Header().Get("Content-Type"), "text/html")
	require.Contains(t, rec.Body.String(), `<script type="module" src="/assets/app.js"></script>`)

	for target, ctype := range map[string]string{
		"/assets/app.js":      "javascript",
		"/assets/chart.js":    "javascript",
		"/assets/app.css":     "text/css",
		"/assets/icon.svg":    "image/svg+xml",
		"/page/features.json": "application/json",
	} {
		require.Contains(t, get(t, e, target).Header().Get("Content-Type"), ctype, target)
	}
}

func TestAssetsOutsideTheFolderAreNotServed(t *testing.T) {
	e := echo.New()
	web.Register(e)
	for _, target := range []string{"/assets/", "/assets/missing.js", "/assets/../index.html", "/assets/%2e%2e/index.html", "/index.html"} {
		require.Equal(t, http.StatusNotFound, get(t, e, target).Code, target)
	}
}

func TestFeaturesReflectTheRegisteredRoutes(t *testing.T) {
	noop := func(echo.Context) error { return nil }

	bare := echo.New()
	web.Register(bare)
	bare.GET("/v1/workspaces/:workspace_id/audit-events/:id", noop)
	var f web.Features
	require.NoError(t, json.Unmarshal(get(t, bare, "/page/features.json").Body.Bytes(), &f))
	require.Equal(t, web.Features{}, f, "an id route is not the facets endpoint")

	full := echo.New()
	web.Register(full) // before the API's routes: computed at the first request
	full.GET("/v1/workspaces/:workspace_id/audit-events/facets", noop)
	full.GET("/v1/workspaces/:workspace_id/audit-events.csv", noop)
	full.GET("/v1/workspaces/:workspace_id/audit-events/timeline", noop)
	full.GET("/v1/workspaces/:workspace_id/forwarding", noop)
	full.PUT("/v1/workspaces/:workspace_id/forwarding", noop)
	full.POST("/v1/workspaces/:workspace_id/forwarding/test", noop)
	full.GET("/v1/workspaces/:workspace_id/audit-events/:id/proof", noop)
	full.GET("/v1/workspaces/:workspace_id/audit-events.ndjson", noop)
	full.GET("/v1/workspaces/:workspace_id/tracking-plan", noop)
	full.GET("/v1/workspaces/:workspace_id/destination-filters", noop)
	full.GET("/v1/workspaces/:workspace_id/alerts", noop)
	full.POST("/v1/workspaces/:workspace_id/destination-filters/validate", noop)
	full.POST("/v1/workspaces/:workspace_id/tracking-plan/validate", noop)
	full.POST("/v1/workspaces/:workspace_id/forwarding/preview", noop)
	f = web.Features{}
	require.NoError(t, json.Unmarshal(get(t, full, "/page/features.json").Body.Bytes(), &f))
	require.Equal(t, web.Features{Facets: true, CSV: true, Timeline: true, Forwarding: true, ForwardingTest: true, Proofs: true, NDJSON: true,
		TrackingPlan: true, DestinationFilters: true, Alerts: true, ConditionCheck: true, SchemaCheck: true, Preview: true}, f)
}

func TestSearchIsOnWhenTheOpenAPIDocumentDeclaresQ(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"paths": {"/v1/workspaces/{workspace_id}/audit-events": {"get": {"parameters": [{"name": "q", "in": "query"}]}}}}`:     true,
		`{"components": {"parameters": {"Q": {"name": "q", "in": "query", "schema": {"type": "string"}}}}}`:                      true,
		`{"paths": {"/v1/workspaces/{workspace_id}/audit-events": {"get": {"parameters": [{"name": "event", "in": "query"}]}}}}`: false,
		`not json`: false,
	} {
		e := echo.New()
		web.Register(e)
		e.GET("/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/json", []byte(doc)) })
		var f web.Features
		require.NoError(t, json.Unmarshal(get(t, e, "/page/features.json").Body.Bytes(), &f))
		require.Equal(t, want, f.Search, doc)
	}
	e := echo.New()
	web.Register(e)
	var f web.Features
	require.NoError(t, json.Unmarshal(get(t, e, "/page/features.json").Body.Bytes(), &f))
	require.False(t, f.Search, "no OpenAPI document")
}

// The page must work under its own Content-Security-Policy: no inline
// script, style or event handler attributes anywhere in the markup.
func TestMarkupHasNoInlineScriptOrStyle(t *testing.T) {
	html := readStatic(t, "index.html")
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		require.Contains(t, m, `src="/assets/`, "inline script: %s", m)
	}
	require.NotContains(t, html, "<style")
	require.NotRegexp(t, `\sstyle=`, html)
	require.NotRegexp(t, `\son[a-z]+=`, html)
}

// Every element the scripts look up by id exists in the page, and every
// module they import is embedded.
func TestScriptsReferToExistingElementsAndModules(t *testing.T) {
	html := readStatic(t, "index.html")
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		ids[m[1]] = true
	}
	scripts, err := filepath.Glob("static/assets/*.js")
	require.NoError(t, err)
	require.NotEmpty(t, scripts)
	lookups := 0
	for _, p := range scripts {
		src := readStatic(t, strings.TrimPrefix(p, "static/"))
		for _, m := range regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(src, -1) {
			require.True(t, ids[m[1]], "%s looks up #%s, which index.html lacks", p, m[1])
			lookups++
		}
		for _, m := range regexp.MustCompile(`from '\./([^']+)'`).FindAllStringSubmatch(src, -1) {
			_, err := os.Stat(filepath.Join("static/assets", m[1]))
			require.NoError(t, err, "%s imports %s", p, m[1])
		}
		require.NotRegexp(t, `console\.(log|error|warn)`, src, "%s writes to the console", p)
	}
	require.Greater(t, lookups, 50)
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(os.DirFS("static"), name)
	require.NoError(t, err)
	return string(b)
}
