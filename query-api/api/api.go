// Package api is the read API: owner-only, filtered, paginated reads of a
// workspace's audit trail and the event catalogue, served with echo.
//
// Routes:
//
//	GET /v1/catalogue
//	GET /v1/workspaces/{workspace_id}/audit-events
//	GET /v1/workspaces/{workspace_id}/audit-events/{id}
//
// Every parameter is validated; a bad one is a 400 whose error names the
// field. Reads never return events older than the retention window.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
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
}

// API serves the read endpoints.
type API struct {
	events   EventReader
	verifier *auth.Verifier
}

// New returns the API over events, authenticating with verifier.
func New(events EventReader, verifier *auth.Verifier) *API {
	return &API{events: events, verifier: verifier}
}

// Register mounts the routes on e.
func (a *API) Register(e *echo.Echo) {
	e.GET("/v1/catalogue", a.catalogue)
	ws := e.Group("/v1/workspaces/:workspace_id", a.verifier.Middleware(), validWorkspace, auth.RequireOwner("workspace_id"))
	ws.GET("/audit-events", a.list)
	ws.GET("/audit-events/:id", a.get)
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
	page, err := a.events.List(c.Request().Context(), f, after, limit)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
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
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return httpserver.BadRequest("id", "must be 1-128 letters, digits, '.', '_', ':' or '-'")
	}
	e, err := a.events.Get(c.Request().Context(), c.Param("workspace_id"), id)
	if errors.Is(err, store.ErrNotFound) {
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "id", Message: "no event with this id in the retention window"}
	}
	if err != nil {
		return fmt.Errorf("get event: %w", err)
	}
	return c.JSON(http.StatusOK, e)
}

func (a *API) catalogue(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"events": catalogue.All(), "categories": catalogue.Categories()})
}

var listParams = map[string]bool{
	"event": true, "category": true, "actor_type": true, "actor_id": true,
	"resource_type": true, "resource_id": true, "since": true, "until": true,
	"limit": true, "cursor": true,
}

// parseList validates the list endpoint's query parameters.
func parseList(workspaceID string, q url.Values) (store.Filter, *store.Cursor, int, error) {
	f := store.Filter{WorkspaceID: workspaceID}
	for k := range q {
		if !listParams[k] {
			return f, nil, 0, httpserver.BadRequest(k, "unknown query parameter")
		}
	}
	single := func(name string) (string, error) {
		vs := q[name]
		if len(vs) > 1 {
			return "", httpserver.BadRequest(name, "may be given once")
		}
		if len(vs) == 0 {
			return "", nil
		}
		if len(vs[0]) > event.MaxNameLen {
			return "", httpserver.BadRequest(name, fmt.Sprintf("at most %d bytes", event.MaxNameLen))
		}
		return vs[0], nil
	}
	if len(q["event"]) > 100 {
		return f, nil, 0, httpserver.BadRequest("event", "at most 100 event names")
	}
	for _, name := range q["event"] {
		if len(name) == 0 || len(name) > 100 {
			return f, nil, 0, httpserver.BadRequest("event", "event names are 1-100 characters")
		}
		f.Events = append(f.Events, name)
	}
	var err error
	for _, p := range []struct {
		name string
		dst  *string
	}{{"category", &f.Category}, {"actor_type", &f.ActorType}, {"actor_id", &f.ActorID},
		{"resource_type", &f.ResourceType}, {"resource_id", &f.ResourceID}} {
		if *p.dst, err = single(p.name); err != nil {
			return f, nil, 0, err
		}
	}
	switch f.ActorType {
	case "", event.ActorUser, event.ActorAccessToken, event.ActorSystem:
	default:
		return f, nil, 0, httpserver.BadRequest("actor_type", `must be "user", "access_token" or "system"`)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		s, err := single(p.name)
		if err != nil {
			return f, nil, 0, err
		}
		if s == "" {
			continue
		}
		t, perr := event.ParseTime(s)
		if perr != nil {
			return f, nil, 0, httpserver.BadRequest(p.name, perr.Error())
		}
		*p.dst = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, nil, 0, httpserver.BadRequest("until", "must be after since")
	}
	limit := DefaultLimit
	if s, err := single("limit"); err != nil {
		return f, nil, 0, err
	} else if s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > MaxLimit {
			return f, nil, 0, httpserver.BadRequest("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxLimit))
		}
		limit = n
	}
	var after *store.Cursor
	if s, err := single("cursor"); err != nil {
		return f, nil, 0, err
	} else if s != "" {
		cur, cerr := store.DecodeCursor(s)
		if cerr != nil {
			return f, nil, 0, httpserver.BadRequest("cursor", cerr.Error())
		}
		after = &cur
	}
	return f, after, limit, nil
}
