// Package web serves the Audit Trail page.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the binary,
// talking to the read API from the browser with the token the owner pastes
// in.
//
// Routes (mounted by Register):
//
//	GET /                     the page (filters live in its query string)
//	GET /assets/*             its styles, scripts and icon
//	GET /page/features.json   which optional API endpoints this server has
//
// The page and its assets are sent with a Content-Security-Policy that
// allows only this origin and no inline script or style, and with
// X-Content-Type-Options: nosniff. The features document lets the page hide
// what the server cannot do (search, facets, CSV export, timeline,
// forwarding) instead of probing endpoints that answer 404.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with the page and its assets.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Features says which optional endpoints the server registered. The page
// reads it once at start.
type Features struct {
	// Search: the server's OpenAPI document (/openapi.json) lists a q query
	// parameter.
	Search         bool `json:"search"`
	Facets         bool `json:"facets"`
	CSV            bool `json:"csv"`
	Timeline       bool `json:"timeline"`
	Forwarding     bool `json:"forwarding"`
	ForwardingTest bool `json:"forwarding_test"`
	// Proofs: an event's inclusion proof in its workspace's signed log
	// (the event panel's integrity section).
	Proofs bool `json:"proofs"`
	// NDJSON: the export with a signed manifest ("Export with proof").
	NDJSON bool `json:"ndjson"`
	// The settings editors: each kind's GET, the checks while typing and
	// the preview.
	TrackingPlan       bool `json:"tracking_plan"`
	DestinationFilters bool `json:"destination_filters"`
	Alerts             bool `json:"alerts"`
	ConditionCheck     bool `json:"condition_check"`
	SchemaCheck        bool `json:"schema_check"`
	Preview            bool `json:"preview"`
}

// optional maps each feature to the method and route suffix that provides it.
var optional = []struct {
	method, suffix string
	set            func(*Features)
}{
	{http.MethodGet, "/audit-events/facets", func(f *Features) { f.Facets = true }},
	{http.MethodGet, "/audit-events.csv", func(f *Features) { f.CSV = true }},
	{http.MethodGet, "/audit-events/timeline", func(f *Features) { f.Timeline = true }},
	{http.MethodGet, "/forwarding", func(f *Features) { f.Forwarding = true }},
	{http.MethodPost, "/forwarding/test", func(f *Features) { f.ForwardingTest = true }},
	{http.MethodGet, "/audit-events/:id/proof", func(f *Features) { f.Proofs = true }},
	{http.MethodGet, "/audit-events.ndjson", func(f *Features) { f.NDJSON = true }},
	{http.MethodGet, "/tracking-plan", func(f *Features) { f.TrackingPlan = true }},
	{http.MethodGet, "/destination-filters", func(f *Features) { f.DestinationFilters = true }},
	{http.MethodGet, "/alerts", func(f *Features) { f.Alerts = true }},
	{http.MethodPost, "/destination-filters/validate", func(f *Features) { f.ConditionCheck = true }},
	{http.MethodPost, "/tracking-plan/validate", func(f *Features) { f.SchemaCheck = true }},
	{http.MethodPost, "/forwarding/preview", func(f *Features) { f.Preview = true }},
}

// FeaturesOf reports which optional endpoints routes include.
func FeaturesOf(routes []*echo.Route) Features {
	var f Features
	for _, r := range routes {
		if !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		for _, o := range optional {
			if r.Method == o.method && strings.HasSuffix(r.Path, o.suffix) {
				o.set(&f)
			}
		}
	}
	return f
}

// Register mounts the page, its assets and the features document on e.
// The features document is computed from e's routes at the first request,
// so Register may be called before or after the API registers its routes.
func Register(e *echo.Echo) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServer(http.FS(root))
	e.GET("/", func(c echo.Context) error {
		b, err := fs.ReadFile(root, "index.html")
		if err != nil {
			return err
		}
		return c.HTMLBlob(http.StatusOK, b)
	}, secure)
	e.GET("/assets/*", func(c echo.Context) error {
		name := path.Clean("assets/" + c.Param("*"))
		if !strings.HasPrefix(name, "assets/") {
			return echo.ErrNotFound
		}
		if st, err := fs.Stat(root, name); err != nil || st.IsDir() {
			return echo.ErrNotFound
		}
		req := c.Request().Clone(c.Request().Context())
		req.URL.Path = "/" + name
		files.ServeHTTP(c.Response(), req)
		return nil
	}, secure)
	var once sync.Once
	var features Features
	e.GET("/page/features.json", func(c echo.Context) error {
		once.Do(func() {
			features = FeaturesOf(e.Routes())
			features.Search = documentsSearch(e)
		})
		return c.JSON(http.StatusOK, features)
	}, secure)
}

// documentsSearch reports whether e serves an OpenAPI document at
// /openapi.json that declares a query parameter named q.
func documentsSearch(e *echo.Echo) bool {
	found := false
	for _, r := range e.Routes() {
		found = found || (r.Method == http.MethodGet && r.Path == "/openapi.json")
	}
	if !found {
		return false
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "/openapi.json", nil)
	if err != nil {
		return false
	}
	var w recorder
	e.ServeHTTP(&w, req)
	var doc any
	if w.status != http.StatusOK || json.Unmarshal(w.body.Bytes(), &doc) != nil {
		return false
	}
	return hasQueryParam(doc, "q")
}

func hasQueryParam(v any, name string) bool {
	switch v := v.(type) {
	case map[string]any:
		if v["name"] == name && v["in"] == "query" {
			return true
		}
		for _, x := range v {
			if hasQueryParam(x, name) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasQueryParam(x, name) {
				return true
			}
		}
	}
	return false
}

// recorder keeps a response in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// secure adds the page's security headers.
func secure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		return next(c)
	}
}
