// Package api is the read API, served with echo.
//
// It serves owner-only, filtered, searchable, paginated reads of a
// workspace's audit trail, facet counts, a streamed CSV export that is
// itself recorded in the trail, the event catalogue and the OpenAPI
// document.
//
// Routes (schemas/openapi describes each):
//
//	GET /openapi.json
//	GET /v1/catalogue
//	GET /v1/workspaces/{workspace_id}/audit-events
//	GET /v1/workspaces/{workspace_id}/audit-events.csv
//	GET /v1/workspaces/{workspace_id}/audit-events.ndjson
//	GET /v1/workspaces/{workspace_id}/audit-events/facets
//	GET /v1/workspaces/{workspace_id}/audit-events/timeline
//	GET /v1/workspaces/{workspace_id}/audit-events/{id}
//	GET /v1/workspaces/{workspace_id}/audit-events/{id}/proof
//	GET /v1/workspaces/{workspace_id}/log/checkpoint
//	GET /v1/workspaces/{workspace_id}/log/consistency
//	GET /v1/workspaces/{workspace_id}/retention
//	GET /v1/log/keys
//
// Every parameter is validated; a bad or unknown one is a 400 whose error
// names the field. Reads never return events older than the retention
// window.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/openapi"
)

// Page size limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// EventReader is what the API needs of the event store.
type EventReader interface {
	List(ctx context.Context, f store.Filter, after *store.Cursor, limit int) (store.Page, error)
	Get(ctx context.Context, workspaceID, id string) (event.Event, error)
	Facets(ctx context.Context, f store.Filter) (store.Facets, error)
	// Histogram counts the matching events per interval, in zone.
	Histogram(ctx context.Context, f store.Filter, iv store.Interval, zone *time.Location) ([]store.Bucket, error)
	// Export calls fn for each matching event, newest first, as they are
	// read; fn must not keep the row.
	Export(ctx context.Context, f store.Filter, fn func(r *migrations.Row) error) error
	// Count counts the matching events (each once).
	Count(ctx context.Context, f store.Filter) (uint64, error)
	// RowsByKeys calls fn for the stored row of each key in the window;
	// fn must not keep the row.
	RowsByKeys(ctx context.Context, workspaceID string, keys []store.Key, fn func(r *migrations.Row) error) error
}

// Recorder records events in the audit trail (producers/emitter.Emitter):
// Emit returns once the event is durably accepted.
type Recorder interface {
	Emit(ctx context.Context, e event.Event) error
}

// Options configure an API.
type Options struct {
	Events EventReader
	// Log reads the integrity log, for the proof endpoints and manifests.
	Integrity LogReader
	// VerifierKeys are the note verifier keys served at /v1/log/keys
	// (checkpoints and manifests verify with one of them).
	VerifierKeys []string
	// Origin is the log origin prefix (the origin line of a workspace's
	// checkpoints is Origin/<workspace_id>).
	Origin string
	// ManifestKeys are the verifier keys of export manifests, also served
	// at /v1/log/keys; Signer signs them (never with the checkpoints' key);
	// nil turns self-proving exports off (503).
	ManifestKeys []string
	Signer       note.Signer
	Verifier     *auth.Verifier
	// Retention serves the owners' view of their workspace's retention;
	// nil answers it 503.
	Retention RetentionReader
	// Recorder records each CSV export; required.
	Recorder Recorder
	// RecordTimeout bounds recording an export (default 10 s).
	RecordTimeout time.Duration
	Log           *slog.Logger          // nil: discard
	Reg           prometheus.Registerer // nil: metrics are not registered
	Now           func() time.Time      // nil: time.Now
}

// API serves the read endpoints. It is safe for concurrent use.
type API struct {
	o       Options
	exports *prometheus.CounterVec
	rows    prometheus.Counter
}

// New returns the API.
func New(o Options) *API {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RecordTimeout <= 0 {
		o.RecordTimeout = 10 * time.Second
	}
	a := &API{
		o: o,
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_api_exports_total",
			Help: "CSV exports by result: ok, not_recorded (refused: recording failed), failed (stopped while streaming).",
		}, []string{"result"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_api_export_rows_total",
			Help: "Rows written by CSV exports.",
		}),
	}
	if o.Reg != nil {
		o.Reg.MustRegister(a.exports, a.rows)
	}
	return a
}

// Register mounts the routes on e.
func (a *API) Register(e *echo.Echo) {
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapi.Document())
	})
	e.GET("/v1/catalogue", a.catalogue)
	// Middleware per route, not on an echo Group: a group's middleware
	// comes with a catch-all route that turns a wrong method into a 404,
	// where the router answers 405 with Allow.
	mw := []echo.MiddlewareFunc{a.o.Verifier.Middleware(), validWorkspace, auth.RequireOwner("workspace_id")}
	const ws = "/v1/workspaces/:workspace_id"
	e.GET(ws+"/audit-events", a.list, mw...)
	e.GET(ws+"/audit-events.csv", a.exportCSV, mw...)
	e.GET(ws+"/audit-events.ndjson", a.exportNDJSON, mw...)
	// A static segment wins over :id, so no event id can be "facets".
	e.GET(ws+"/audit-events/facets", a.facets, mw...)
	e.GET(ws+"/audit-events/timeline", a.timeline, mw...)
	e.GET(ws+"/audit-events/:id", a.get, mw...)
	e.GET(ws+"/retention", a.retention, mw...)
	a.registerLog(e, mw)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)

func validWorkspace(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !idPattern.MatchString(c.Param("workspace_id")) {
			return httpserver.BadRequest("workspace_id", "must be 1-128 letters, digits, '.', '_', ':' or '-'")
		}
		return next(c)
	}
}

// ListResponse is the answer of the list endpoint.
type ListResponse struct {
	Data       []event.Event `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

func (a *API) list(c echo.Context) error {
	f, after, limit, err := parseList(c.Param("workspace_id"), c.QueryParams())
	if err != nil {
		return err
	}
	page, err := a.o.Events.List(c.Request().Context(), f.Filter, after, limit)
	if err != nil {
		return a.storeError("list events", err)
	}
	resp := ListResponse{Data: page.Events}
	if resp.Data == nil {
		resp.Data = []event.Event{}
	}
	if page.Next != nil {
		s := page.Next.Encode()
		resp.NextCursor = &s
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *API) get(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return httpserver.BadRequest("id", "must be 1-128 letters, digits, '.', '_', ':' or '-'")
	}
	e, err := a.o.Events.Get(c.Request().Context(), c.Param("workspace_id"), id)
	if errors.Is(err, store.ErrNotFound) {
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "id", Message: "no event with this id in the retention window"}
	}
	if err != nil {
		return a.storeError("get event", err)
	}
	return c.JSON(http.StatusOK, e)
}

func (a *API) facets(c echo.Context) error {
	f, err := parseFilter(c.Param("workspace_id"), c.QueryParams())
	if err != nil {
		return err
	}
	facets, err := a.o.Events.Facets(c.Request().Context(), f.Filter)
	if err != nil {
		return a.storeError("facets", err)
	}
	return c.JSON(http.StatusOK, facets)
}

func (a *API) catalogue(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"events": catalogue.All(), "categories": catalogue.Categories()})
}

// noParams rejects any query parameter.
func noParams(c echo.Context) error {
	for k := range c.QueryParams() {
		return httpserver.BadRequest(k, "unknown query parameter")
	}
	return nil
}

// storeError is the one place that decides how a failed read answers: 503
// ("retry") when the store could not be reached or dropped the connection
// (a restart, a network fault), logged here as the answer does not carry
// it; 500 otherwise, logged by the error handler.
func (a *API) storeError(doing string, err error) error {
	err = fmt.Errorf("%s: %w", doing, err)
	if !unreachable(err) {
		return err
	}
	a.o.Log.Warn("event store unreachable", "err", err)
	return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "the event store is unreachable; retry"}
}

// unreachable reports whether err is a failure to reach the store or a
// connection it dropped.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
