// Package admin is the operators' API: per-workspace retention, legal
// holds and archive restores. It is served on its own listener
// (config.AdminAddr, off when empty), never on the owners' API, and
// admits only operator tokens (config.AdminTokens), not the owners' JWTs.
//
// Routes:
//
//	GET /admin/v1/retention                                 every explicit policy
//	GET /admin/v1/workspaces/{workspace_id}/retention       a workspace's policy (the default when none)
//	PUT /admin/v1/workspaces/{workspace_id}/retention       {"days": 1-3650, "reason": "..."}
//	PUT /admin/v1/workspaces/{workspace_id}/legal-hold      {"hold": true|false, "reason": "..."}
//	POST /admin/v1/workspaces/{workspace_id}/archive/restore {"day": "2025-03-09", "until": "2026-06-30", "reason": "..."}
//
// Every change is first recorded in the workspace's own trail ("Audit
// Retention Changed", "Audit Legal Hold Placed", "Audit Legal Hold
// Released", "Audit Archive Restored", with the operator's name as the
// actor) and then takes effect; if recording fails nothing changes (503).
// Bad input is a 400 naming the field.
package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"encoding/json"
	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/schemas/event"
)

// Retention bounds and the longest reason.
const (
	MinDays         = retentionpolicy.MinDays
	MaxDays         = retentionpolicy.MaxDays
	MaxReasonLength = 500
	// MaxBody bounds a request body.
	MaxBody = 16 << 10
)

// Policy is a workspace's retention policy.
type Policy = retentionpolicy.Policy

// Policies stores the policies (a *ClickHousePolicies).
type Policies interface {
	// Get returns the workspace's policy, the default one when none was set.
	Get(ctx context.Context, workspace string) (Policy, error)
	// Set appends a new version of the workspace's policy.
	Set(ctx context.Context, p Policy) error
	// All returns the explicit policies, by workspace.
	All(ctx context.Context) (map[string]Policy, error)
}

// HoldGuard stops the retention deletes queued before a legal hold or a
// longer window from deleting the workspace's rows they now keep (a
// *ClickHousePolicies; the Policies of Options are used when they
// implement it). ProtectHeld takes the policy the change replaced and
// returns the tables it acted on.
type HoldGuard interface {
	ProtectHeld(ctx context.Context, previous Policy) ([]string, error)
}

// Emitter records audit events (an emitter.Emitter); Emit returns once the
// event is durably accepted.
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) error
}

// Options configure Register.
type Options struct {
	Operators Operators
	Policies  Policies
	Emitter   Emitter
	// Restorer restores archives; nil answers restores 409 (no archive
	// directory configured).
	Restorer *Restorer
	Log      *slog.Logger
	Now      func() time.Time
}

// Register mounts the admin routes on e (an echo of its own listener).
func Register(e *echo.Echo, o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &handler{o: o}
	auth := h.authenticate
	ws := []echo.MiddlewareFunc{auth, validWorkspace}
	e.GET("/admin/v1/retention", h.list, auth)
	e.GET("/admin/v1/workspaces/:workspace_id/retention", h.get, ws...)
	e.PUT("/admin/v1/workspaces/:workspace_id/retention", h.setDays, ws...)
	e.PUT("/admin/v1/workspaces/:workspace_id/legal-hold", h.setHold, ws...)
	e.POST("/admin/v1/workspaces/:workspace_id/archive/restore", h.restore, ws...)
}

type handler struct {
	o Options
	// mu serializes this instance's changes, so the old value each event
	// records is the one the change replaced.
	mu sync.Mutex
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

// PolicyView is a policy as the admin API shows it.
type PolicyView struct {
	WorkspaceID string `json:"workspace_id"`
	Days        int    `json:"days"`
	LegalHold   bool   `json:"legal_hold"`
	HoldReason  string `json:"hold_reason,omitempty"`
	// Explicit is false for the deployment default (no policy set).
	Explicit  bool       `json:"explicit"`
	ChangedBy string     `json:"changed_by,omitempty"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
}

func view(p Policy) PolicyView {
	v := PolicyView{WorkspaceID: p.Workspace, Days: p.Days, LegalHold: p.Hold, HoldReason: p.HoldReason,
		ChangedBy: p.ChangedBy, Explicit: !p.ChangedAt.IsZero()}
	if v.Explicit {
		at := p.ChangedAt.UTC()
		v.ChangedAt = &at
	}
	return v
}

func (h *handler) list(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	all, err := h.o.Policies.All(c.Request().Context())
	if err != nil {
		return h.unavailable("list retention policies", err)
	}
	out := make([]PolicyView, 0, len(all))
	for ws, p := range all {
		p.Workspace = ws
		out = append(out, view(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].WorkspaceID < out[j].WorkspaceID })
	return c.JSON(http.StatusOK, map[string]any{"policies": out})
}

func (h *handler) get(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	p, err := h.o.Policies.Get(c.Request().Context(), c.Param("workspace_id"))
	if err != nil {
		return h.unavailable("read the retention policy", err)
	}
	p.Workspace = c.Param("workspace_id")
	return c.JSON(http.StatusOK, view(p))
}

// daysRequest is the body of PUT .../retention.
type daysRequest struct {
	Days   *int   `json:"days"`
	Reason string `json:"reason"`
	// ShareReason puts the reason in the workspace's own trail too.
	ShareReason bool `json:"share_reason"`
}

func (h *handler) setDays(c echo.Context) error {
	var req daysRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Days == nil || *req.Days < MinDays || *req.Days > MaxDays {
		return httpserver.BadRequest("days", fmt.Sprintf("required: a whole number of days from %d to %d", MinDays, MaxDays))
	}
	reason, err := checkReason(req.Reason, false)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ws, old, err := h.current(c)
	if err != nil {
		return err
	}
	if old.Days == *req.Days && !old.ChangedAt.IsZero() {
		return c.JSON(http.StatusOK, view(old)) // nothing changes: nothing to record
	}
	next := old
	next.Days, next.ChangedBy, next.ChangedAt = *req.Days, operator(c), h.changedAt(old)
	rec := h.events(c, ws, changeEvent{name: EventRetentionChanged, resource: "Audit retention",
		changes: map[string]event.Change{"days": change(old.Days, next.Days)},
		props:   map[string]any{"old_days": old.Days, "new_days": next.Days}, reason: reason, shareReason: req.ShareReason})
	return h.apply(c, rec, old, next)
}

// holdRequest is the body of PUT .../legal-hold.
type holdRequest struct {
	Hold   *bool  `json:"hold"`
	Reason string `json:"reason"`
	// ShareReason puts the reason in the workspace's own trail too.
	ShareReason bool `json:"share_reason"`
}

func (h *handler) setHold(c echo.Context) error {
	var req holdRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Hold == nil {
		return httpserver.BadRequest("hold", "required: true places a legal hold, false releases it")
	}
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ws, old, err := h.current(c)
	if err != nil {
		return err
	}
	if old.Hold == *req.Hold {
		state := "no legal hold is"
		if old.Hold {
			state = "a legal hold is already"
		}
		return &httpserver.Error{Status: http.StatusConflict, Code: "unchanged", Field: "hold",
			Message: state + " on this workspace; nothing was changed or recorded"}
	}
	next := old
	next.Hold, next.ChangedBy, next.ChangedAt = *req.Hold, operator(c), h.changedAt(old)
	name := EventHoldPlaced
	next.HoldReason = reason
	if !next.Hold {
		name, next.HoldReason = EventHoldReleased, ""
	}
	rec := h.events(c, ws, changeEvent{name: name, resource: "Audit retention",
		changes: map[string]event.Change{"legal_hold": change(old.Hold, next.Hold)},
		props:   map[string]any{"days": next.Days}, reason: reason, shareReason: req.ShareReason})
	return h.apply(c, rec, old, next)
}

// current reads the policy in force of the request's workspace; the
// caller holds h.mu until its change is stored.
func (h *handler) current(c echo.Context) (string, Policy, error) {
	ws := c.Param("workspace_id")
	old, err := h.o.Policies.Get(c.Request().Context(), ws)
	if err != nil {
		return ws, Policy{}, h.unavailable("read the retention policy", err)
	}
	old.Workspace = ws
	return ws, old, nil
}

// changedAt is the time of a change to old: now, or, when this host's
// clock is behind the policy in force, the second after it. The policy's
// version is its change time in nanoseconds and the stored time has whole
// seconds, so a change is always a newer version than the one it
// replaces.
func (h *handler) changedAt(old Policy) time.Time {
	now := h.o.Now().UTC()
	if old.ChangedAt.IsZero() {
		return now
	}
	if floor := old.ChangedAt.UTC().Truncate(time.Second).Add(time.Second); now.Before(floor) {
		return floor
	}
	return now
}

// samePolicy reports whether two reads show the same policy version.
func samePolicy(a, b Policy) bool {
	return a.Days == b.Days && a.Hold == b.Hold && a.HoldReason == b.HoldReason && a.ChangedBy == b.ChangedBy &&
		a.ChangedAt.Truncate(time.Second).Equal(b.ChangedAt.Truncate(time.Second))
}

// apply records the change, then stores next if the policy in force is
// still old (another instance may have changed it meanwhile: then nothing
// is stored, 409), and reads it back: a concurrent change stored over this
// one is a 409 too, never a silent loss (a hold undone by a days change).
func (h *handler) apply(c echo.Context, rec record, old, next Policy) error {
	ctx, name := c.Request().Context(), rec.workspace.Event
	if err := h.emit(ctx, rec); err != nil {
		h.o.Log.Error("record retention change", "workspace_id", next.Workspace, "event", name, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "could not record the change in the audit trail; nothing was changed, retry"}
	}
	cur, err := h.o.Policies.Get(ctx, next.Workspace)
	if err != nil {
		return h.unavailable("read the retention policy", err)
	}
	if !samePolicy(cur, old) {
		return &httpserver.Error{Status: http.StatusConflict, Code: "concurrent_change",
			Message: fmt.Sprintf("the policy was changed meanwhile (by %s); the %q event is recorded but nothing was stored: read the policy and repeat if still needed", cur.ChangedBy, name)}
	}
	if err := h.o.Policies.Set(ctx, next); err != nil {
		h.o.Log.Error("store retention policy", "workspace_id", next.Workspace, "event", name, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: fmt.Sprintf("the %q event is recorded but the policy could not be stored; repeat the request", name)}
	}
	back, err := h.o.Policies.Get(ctx, next.Workspace)
	if err != nil {
		return h.unavailable("read the retention policy back", err)
	}
	if !samePolicy(back, next) {
		return &httpserver.Error{Status: http.StatusConflict, Code: "concurrent_change",
			Message: fmt.Sprintf("another change (by %s) was stored over this one: read the policy and repeat if still needed", back.ChangedBy)}
	}
	h.o.Log.Info("retention policy changed", "workspace_id", next.Workspace, "event", name, "operator", next.ChangedBy)
	if (next.Hold && !old.Hold) || (!next.Hold && next.Days > old.Days) {
		if err := h.protect(c, old); err != nil {
			return err
		}
	}
	back.Workspace = next.Workspace
	return c.JSON(http.StatusOK, view(back))
}

// protect stops the retention deletes queued before a hold or a longer
// window on previous's workspace (see HoldGuard), when the policies can.
func (h *handler) protect(c echo.Context, previous Policy) error {
	g, ok := h.o.Policies.(HoldGuard)
	if !ok {
		return nil
	}
	tables, err := g.ProtectHeld(c.Request().Context(), previous)
	if err != nil {
		h.o.Log.Error("protect a held workspace from queued deletes", "workspace_id", previous.Workspace, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "the change is stored and in force, but the retention deletes queued before it could not be stopped yet; the retention job repeats this at its next run"}
	}
	if len(tables) > 0 {
		h.o.Log.Info("kept a held workspace's rows from the retention deletes queued before its hold", "workspace_id", previous.Workspace, "tables", tables)
	}
	return nil
}

func (h *handler) unavailable(doing string, err error) error {
	h.o.Log.Error(doing, "err", err)
	return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "could not " + doing + "; retry"}
}

// decode reads a JSON object body into v: unknown fields, trailing data
// and values of the wrong type are a 400 naming the field.
func decode(c echo.Context, v any) error {
	if err := noParams(c); err != nil {
		return err
	}
	body, err := httpserver.ReadBody(c, MaxBody)
	if err != nil {
		return err
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return httpserver.BadRequest("", "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return httpserver.BadRequest("", "the body must be one JSON object")
	}
	return nil
}

var unknownField = regexp.MustCompile(`unknown field "([^"]{1,64})"`)

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return httpserver.BadRequest(te.Field, "has the wrong type: want "+te.Type.String())
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return httpserver.BadRequest(m[1], "unknown field")
	}
	return httpserver.BadRequest("", "the body is not valid JSON")
}

// checkReason trims a reason and bounds it; required says whether it may
// be empty.
func checkReason(s string, required bool) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" && required:
		return "", httpserver.BadRequest("reason", fmt.Sprintf("required: why, in at most %d characters (recorded in the trail)", MaxReasonLength))
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxReasonLength:
		return "", httpserver.BadRequest("reason", fmt.Sprintf("at most %d characters of valid UTF-8", MaxReasonLength))
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return "", httpserver.BadRequest("reason", "must not hold control characters")
	}
	return s, nil
}

// noParams rejects any query parameter (credentials and values go in the
// header and body, never in the URL).
func noParams(c echo.Context) error {
	for k := range c.QueryParams() {
		return httpserver.BadRequest(k, "unknown query parameter: this API takes no query parameters")
	}
	return nil
}
