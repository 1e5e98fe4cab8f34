// Package settings serves a workspace's audit forwarding settings.
//
// Routes:
//
//	GET|PUT /v1/workspaces/{workspace_id}/forwarding
//	GET|PUT /v1/workspaces/{workspace_id}/tracking-plan
//	GET|PUT /v1/workspaces/{workspace_id}/destination-filters
//	GET|PUT /v1/workspaces/{workspace_id}/alerts
//	POST    /v1/workspaces/{workspace_id}/forwarding/test  (one track call to the saved target now)
//	POST    /v1/workspaces/{workspace_id}/destination-filters/validate  (would a condition be accepted?)
//	POST    /v1/workspaces/{workspace_id}/tracking-plan/validate  (would a planned event's schema be accepted?)
//	POST    /v1/workspaces/{workspace_id}/forwarding/preview  (saved or draft settings over the newest events)
//
// Access is the read API's: a valid bearer token naming the workspace with
// the owner role (401 without a valid token, 404 when the workspace is not
// in the token, 403 for other roles). Bodies are validated and compiled
// (package trackingplan) before anything is stored; bad input is a 400
// naming the field. Every change is first recorded in the audit trail
// ("Audit Forwarding Enabled", "Tracking Plan Modified", ...) with the
// values before and after (write keys and webhook URLs masked), then stored
// in the settings table, from which every forwarder instance picks it up.
package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// Store holds the settings records (a kvtopic.Table in production).
type Store interface {
	Get(key string) ([]byte, bool)
	Put(ctx context.Context, key string, value []byte) error
	// Ready is closed once the stored settings are loaded; until then
	// every request is answered 503.
	Ready() <-chan struct{}
}

// Emitter records audit events (an emitter.Emitter in production).
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) error
}

// Options configure Register.
type Options struct {
	Store    Store
	Emitter  Emitter
	Verifier *auth.Verifier
	Log      *slog.Logger
	Now      func() time.Time
	// Egress is the outbound policy (AUDITTRAIL_FORWARD_ALLOWED_TARGETS):
	// target and webhook URLs with a literal host it refuses are a 400 at
	// PUT, and test events go through its client.
	Egress egress.Config
	// Events decides which event names plans, filters and alerts may
	// name: catalogue names, and custom names where it allows custom
	// events (AUDITTRAIL_ALLOW_CUSTOM_EVENTS,
	// AUDITTRAIL_CUSTOM_EVENT_WORKSPACES), as at ingest.
	Events event.Policy
	// MaxTestCalls bounds the test calls (POST .../forwarding/test) in
	// progress across all workspaces (default DefaultMaxTestCalls); a
	// workspace has at most one at a time. Others are answered 429.
	MaxTestCalls int
	// Recent reads the workspace's newest events for previews; nil: no
	// preview route.
	Recent EventLister
	// MaxPreviews bounds the previews (POST .../forwarding/preview) in
	// progress across all workspaces (default DefaultMaxPreviews); a
	// workspace has at most one at a time. Others are answered 429.
	MaxPreviews int
	// MaxPlanChecks bounds the checks of tracking plans (PUT
	// .../tracking-plan, POST .../tracking-plan/validate) in progress
	// across all workspaces (default DefaultMaxPlanChecks); a workspace
	// has at most one at a time. Others are answered 429.
	MaxPlanChecks int

	// inCheck, when set (tests), runs within a plan check's slot, before
	// the plan is checked.
	inCheck func(ctx context.Context, ws string)
}

// MaxBody bounds a settings request body.
const MaxBody = 2 << 20

// Register mounts the settings routes on e.
func Register(e *echo.Echo, o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxTestCalls <= 0 {
		o.MaxTestCalls = DefaultMaxTestCalls
	}
	if o.MaxPreviews <= 0 {
		o.MaxPreviews = DefaultMaxPreviews
	}
	if o.MaxPlanChecks <= 0 {
		o.MaxPlanChecks = DefaultMaxPlanChecks
	}
	h := &handler{o: o, policy: o.Egress.Policy(), tests: newCallSlots(o.MaxTestCalls, "test call", testTimeout),
		previews: newCallSlots(o.MaxPreviews, "preview", previewReadTimeout+previewEvalTimeout),
		checks:   newCallSlots(o.MaxPlanChecks, "tracking plan check", planCheckRetry)}
	h.client = h.policy.Client(egress.ClientOptions{Timeout: testTimeout})
	mw := []echo.MiddlewareFunc{o.Verifier.Middleware(), validWorkspace, auth.RequireOwner("workspace_id"), h.loaded}
	for _, k := range trackingplan.Kinds {
		kind := k
		path := "/v1/workspaces/:workspace_id/" + kind
		e.GET(path, func(c echo.Context) error { return h.get(c, kind) }, mw...)
		e.PUT(path, func(c echo.Context) error { return h.put(c, kind) }, mw...)
	}
	e.POST("/v1/workspaces/:workspace_id/forwarding/test", h.sendTest, mw...)
	e.POST("/v1/workspaces/:workspace_id/destination-filters/validate", h.validateCondition, mw...)
	e.POST("/v1/workspaces/:workspace_id/tracking-plan/validate", h.validateSchema, mw...)
	if o.Recent != nil {
		e.POST("/v1/workspaces/:workspace_id/forwarding/preview", h.preview, mw...)
	}
}

type handler struct {
	o        Options
	policy   *egress.Policy
	client   *http.Client // test events
	tests    *callSlots
	previews *callSlots
	checks   *callSlots // PUT .../tracking-plan and its validate route
}

func (h *handler) loaded(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		select {
		case <-h.o.Store.Ready():
			return next(c)
		default:
			return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: "settings are still loading; retry in a few seconds"}
		}
	}
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

// Load returns the stored settings of one kind for a workspace, decoded
// into v (left as is when nothing is stored). It reports whether a value
// was stored.
func Load(s Store, ws, kind string, v any) (bool, error) {
	raw, ok := s.Get(trackingplan.Key(ws, kind))
	if !ok {
		return false, nil
	}
	var rec trackingplan.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return false, fmt.Errorf("decode settings record %s/%s: %w", ws, kind, err)
	}
	if err := json.Unmarshal(rec.Settings, v); err != nil {
		return false, fmt.Errorf("decode %s settings of %s: %w", kind, ws, err)
	}
	return true, nil
}

// current returns the stored value of kind with its defaults.
func (h *handler) current(ws, kind string) (any, error) {
	var v any
	switch kind {
	case trackingplan.KindForwarding:
		v = &trackingplan.Forwarding{}
	case trackingplan.KindPlan:
		v = &trackingplan.Plan{}
	case trackingplan.KindFilters:
		v = &trackingplan.Filters{}
	case trackingplan.KindAlerts:
		v = &trackingplan.Alerts{}
	}
	if _, err := Load(h.o.Store, ws, kind, v); err != nil {
		return nil, err
	}
	return v, nil
}

func (h *handler) get(c echo.Context, kind string) error {
	v, err := h.current(c.Param("workspace_id"), kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, display(v))
}

// display returns what a GET shows: defaults filled, secrets masked.
func display(v any) any {
	switch x := v.(type) {
	case *trackingplan.Forwarding:
		return x.Masked()
	case *trackingplan.Plan:
		p := *x
		if p.Events == nil {
			p.Events = map[string]trackingplan.PlanEvent{}
		}
		p.UnplannedEvents = orDefault(p.UnplannedEvents, trackingplan.Allow)
		p.UnplannedProperties = orDefault(p.UnplannedProperties, trackingplan.Allow)
		p.OnViolation = orDefault(p.OnViolation, trackingplan.Allow)
		return p
	case *trackingplan.Filters:
		f := *x
		if f.Filters == nil {
			f.Filters = []trackingplan.Filter{}
		}
		return f
	case *trackingplan.Alerts:
		a := *x
		a.WebhookURL = MaskURL(a.WebhookURL)
		if a.Events == nil {
			a.Events = []string{}
		}
		return a
	}
	return v
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// MaskURL keeps a webhook URL's scheme and host and hides its path, which
// for chat incoming webhooks is the secret.
func MaskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return ""
	}
	if u.Path == "" || u.Path == "/" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/" + trackingplan.MaskKey(u.Path)
}

func (h *handler) put(c echo.Context, kind string) error {
	ws := c.Param("workspace_id")
	body, err := httpserver.ReadBody(c, MaxBody)
	if err != nil {
		return err
	}
	old, err := h.current(ws, kind)
	if err != nil {
		return err
	}
	next, err := h.parse(c, kind, body, old)
	if err == nil {
		err = h.checkTargets(next)
	}
	if err != nil {
		var fe *trackingplan.FieldError
		if errors.As(err, &fe) {
			return &httpserver.Error{Status: http.StatusBadRequest, Code: "invalid_settings", Field: fe.Field, Message: fe.Message}
		}
		return err
	}
	name, changes := describe(kind, old, next)
	if len(changes) == 0 {
		return c.JSON(http.StatusOK, display(next))
	}
	claims := auth.FromContext(c)
	ev := event.Event{
		WorkspaceID: ws,
		Event:       name,
		Timestamp:   h.o.Now().UTC(),
		Actor:       event.Actor{Type: event.ActorUser, ID: claims.Subject, Name: claims.Name, Email: claims.Email},
		Resource:    event.Resource{ID: ws, Name: resourceNames[kind]},
		Changes:     changes,
		Context: event.Context{IP: c.RealIP(), UserAgent: truncate(c.Request().UserAgent(), 512),
			RequestID: truncate(c.Request().Header.Get(echo.HeaderXRequestID), 128)},
	}
	shrink(&ev)
	// The change is recorded before it takes effect: a setting never
	// changes without its audit event.
	if err := h.o.Emitter.Emit(c.Request().Context(), ev); err != nil {
		h.o.Log.Error("record settings change", "workspace_id", ws, "kind", kind, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "could not record the change in the audit trail; nothing was changed, retry"}
	}
	settingsJSON, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	rec, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, UpdatedAt: h.o.Now().UTC(),
		UpdatedBy: claims.Subject, Settings: settingsJSON})
	if err != nil {
		return fmt.Errorf("encode settings record: %w", err)
	}
	if err := h.o.Store.Put(c.Request().Context(), trackingplan.Key(ws, kind), rec); err != nil {
		h.o.Log.Error("store settings", "workspace_id", ws, "kind", kind, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "could not store the settings; retry"}
	}
	return c.JSON(http.StatusOK, display(next))
}

// storedKey returns the write key stored with url: the current target's or
// a saved target's. A stored key is only ever used again for the URL it
// was saved with, so moving a target between the current slot and the
// saved ones keeps its key, and a new URL needs its key.
func storedKey(prev *trackingplan.Forwarding, url string) (string, bool) {
	if prev.Target.WriteKey != "" && sameTarget(url, prev.Target.URL) {
		return prev.Target.WriteKey, true
	}
	for _, t := range prev.SavedTargets {
		if t.WriteKey != "" && sameTarget(url, t.URL) {
			return t.WriteKey, true
		}
	}
	return "", false
}

// masked reports whether k is the masked form GET shows of a stored key
// (sent back by a client that does not know the key): it means "keep".
func masked(prev *trackingplan.Forwarding, k string) bool {
	if prev.Target.WriteKey != "" && k == trackingplan.MaskKey(prev.Target.WriteKey) {
		return true
	}
	for _, t := range prev.SavedTargets {
		if t.WriteKey != "" && k == trackingplan.MaskKey(t.WriteKey) {
			return true
		}
	}
	return false
}

// sameTarget reports whether two target URLs are the same target (the
// forwarder ignores trailing slashes).
func sameTarget(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}
