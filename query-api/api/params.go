package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
)

// filterParams are the query parameters every audit-events endpoint takes.
var filterParams = []string{"event", "category", "actor_type", "actor_id", "resource_type", "resource_id", "since", "until", "q"}

// pageParams are the list endpoint's parameters beyond the filters.
var pageParams = []string{"limit", "cursor"}

// Filters is a validated set of filter parameters: the store's filter and
// what the caller sent, for the record of an export.
type Filters struct {
	store.Filter
	// Used holds the filter parameters as given, without empty ones.
	Used map[string]any
}

// parseFilter validates the filter parameters of q, rejecting any
// parameter outside filterParams and extra.
func parseFilter(workspaceID string, q url.Values, extra ...string) (Filters, error) {
	f := Filters{Filter: store.Filter{WorkspaceID: workspaceID}, Used: map[string]any{}}
	for k, vs := range q {
		if !slices.Contains(filterParams, k) && !slices.Contains(extra, k) {
			return f, httpserver.BadRequest(k, "unknown query parameter")
		}
		for _, v := range vs {
			if msg := badText(v); msg != "" {
				return f, httpserver.BadRequest(k, msg)
			}
		}
	}
	if len(q["event"]) > 100 {
		return f, httpserver.BadRequest("event", "at most 100 event names")
	}
	for _, name := range q["event"] {
		if name == "" || utf8.RuneCountInString(name) > 100 {
			return f, httpserver.BadRequest("event", "event names are 1-100 characters")
		}
		f.Events = append(f.Events, name)
	}
	if len(f.Events) > 0 {
		f.Used["event"] = f.Events
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"category", &f.Category}, {"actor_type", &f.ActorType}, {"actor_id", &f.ActorID},
		{"resource_type", &f.ResourceType}, {"resource_id", &f.ResourceID}} {
		s, err := single(q, p.name, event.MaxNameLen)
		if err != nil {
			return f, err
		}
		*p.dst = s
	}
	switch f.ActorType {
	case "", event.ActorUser, event.ActorAccessToken, event.ActorSystem:
	default:
		return f, httpserver.BadRequest("actor_type", `must be "user", "access_token" or "system"`)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		s, err := single(q, p.name, 64)
		if err != nil || s == "" {
			if err != nil {
				return f, err
			}
			continue
		}
		t, perr := event.ParseTime(s)
		if perr != nil {
			return f, httpserver.BadRequest(p.name, perr.Error())
		}
		*p.dst = t
	}
	// An until at or before since is an empty window: it matches no event
	// (as created: ranges that do not meet), rather than an error.
	for _, name := range []string{"category", "actor_type", "actor_id", "resource_type", "resource_id", "since", "until"} {
		if v := q.Get(name); v != "" {
			f.Used[name] = v
		}
	}
	return f, parseSearch(q, &f)
}

// parseSearch adds the q parameter's search clauses to f; its created:
// clause narrows since and until.
func parseSearch(q url.Values, f *Filters) error {
	s, err := single(q, "q", search.MaxLen)
	if err != nil {
		return err
	}
	sq, err := search.Parse(s)
	if err != nil {
		return httpserver.BadRequest("q", "invalid search: "+err.Error())
	}
	if !sq.IsZero() {
		f.Used["q"] = s
	}
	f.Search = sq.Clauses
	if !sq.Since.IsZero() && sq.Since.After(f.Since) {
		f.Since = sq.Since
	}
	if !sq.Until.IsZero() && (f.Until.IsZero() || sq.Until.Before(f.Until)) {
		f.Until = sq.Until
	}
	return nil
}

// badText says what is wrong with a parameter's value, or "" when it is
// valid UTF-8 without control characters other than tab, line feed and
// carriage return (no C0 control, DEL or C1 control): the text every
// stored field and the record of an export accept.
func badText(v string) string {
	if !utf8.ValidString(v) {
		return "must be valid UTF-8"
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return "must not contain control characters other than tab, line feed and carriage return"
		}
	}
	return ""
}

// single returns the one value of parameter name ("" when absent), of at
// most maxLen characters (as OpenAPI's maxLength counts).
func single(q url.Values, name string, maxLen int) (string, error) {
	vs := q[name]
	switch {
	case len(vs) > 1:
		return "", httpserver.BadRequest(name, "may be given once")
	case len(vs) == 0:
		return "", nil
	case utf8.RuneCountInString(vs[0]) > maxLen:
		return "", httpserver.BadRequest(name, fmt.Sprintf("at most %d characters", maxLen))
	}
	return vs[0], nil
}

// ParseList validates the list endpoint's query parameters as the endpoint
// does and returns the store filter, cursor and page size it would use (for
// tools that run the same reads, such as the benchmark).
func ParseList(workspaceID string, q url.Values) (store.Filter, *store.Cursor, int, error) {
	f, after, limit, err := parseList(workspaceID, q)
	return f.Filter, after, limit, err
}

// parseList validates the list endpoint's query parameters.
func parseList(workspaceID string, q url.Values) (Filters, *store.Cursor, int, error) {
	f, err := parseFilter(workspaceID, q, pageParams...)
	if err != nil {
		return f, nil, 0, err
	}
	limit := DefaultLimit
	if s, err := single(q, "limit", 16); err != nil {
		return f, nil, 0, err
	} else if s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > MaxLimit {
			return f, nil, 0, httpserver.BadRequest("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxLimit))
		}
		limit = n
	}
	var after *store.Cursor
	if s, err := single(q, "cursor", 148); err != nil {
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
