package settings

// The preview: what a workspace's forwarding settings, saved or drafted,
// would do to its latest stored events, decided by the forwarder's own
// pipeline (trackingplan.Pipeline).

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// EventLister reads a workspace's newest events (a *store.Store in
// production).
type EventLister interface {
	List(ctx context.Context, f store.Filter, after *store.Cursor, limit int) (store.Page, error)
}

// Bounds of a preview.
const (
	// MaxPreviewEvents is the most events a preview reads, and its default.
	MaxPreviewEvents = 500
	// maxPreviewExamples is the number of example events of each kind.
	maxPreviewExamples = 5
	// previewReadTimeout bounds reading the events.
	previewReadTimeout = 10 * time.Second
	// previewEvalTimeout bounds running the pipeline over them: past it the
	// preview answers with the events decided so far (complete: false).
	previewEvalTimeout = 5 * time.Second
	// DefaultMaxPreviews is the default of Options.MaxPreviews.
	DefaultMaxPreviews = 4
	// maxViolationText bounds a violation's text in an example.
	maxViolationText = 300
)

// previewRequest is the body of POST .../forwarding/preview. Omitted
// settings are the saved ones.
type previewRequest struct {
	Plan             json.RawMessage `json:"tracking_plan"`
	Filters          json.RawMessage `json:"destination_filters"`
	HardFailuresOnly *bool           `json:"hard_failures_only"`
	Limit            *int            `json:"limit"`
}

// Preview is the answer of POST .../forwarding/preview.
type Preview struct {
	// Events is the number of events decided; Complete is false when the
	// time bound stopped the preview before all events read were decided.
	Events   int  `json:"events"`
	Complete bool `json:"complete"`
	Kept     int  `json:"kept"`
	Dropped  int  `json:"dropped"`
	// Violations counts the events with at least one violation of the
	// tracking plan (sent or not).
	Violations int `json:"violations"`
	// FilterErrors counts the filter conditions that failed to evaluate.
	FilterErrors int `json:"filter_errors"`
	// DroppedBy counts dropped events by reason (trackingplan.Drop*).
	DroppedBy map[string]int `json:"dropped_by"`
	// Filters counts, per filter that dropped events, how many: most
	// first, then by name.
	Filters  []FilterCount   `json:"filters"`
	Examples PreviewExamples `json:"examples"`
}

// FilterCount is the number of events one filter dropped.
type FilterCount struct {
	Name    string `json:"name"`
	Dropped int    `json:"dropped"`
}

// PreviewExamples are the first events (newest first) of each kind.
type PreviewExamples struct {
	Dropped    []PreviewExample `json:"dropped"`
	Violations []PreviewExample `json:"violations"`
}

// PreviewExample is one event of the preview.
type PreviewExample struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	Reason string `json:"reason,omitempty"` // why it was dropped
	Filter string `json:"filter,omitempty"` // the filter that dropped it
	// Violation is the first violation of the plan.
	Violation string `json:"violation,omitempty"`
}

// preview runs the workspace's forwarding pipeline (the forwarder's: the
// hard-failures rule, tracking plan, destination filters), built from the
// saved settings or the drafts in the body, over its newest stored events
// (limit, at most MaxPreviewEvents), and counts what it keeps, drops and
// finds in violation. Drafts are validated as a PUT validates them (a 400
// naming the field, prefixed with tracking_plan. or destination_filters.)
// and stored nowhere. Whether forwarding is on does not matter: the preview
// says what would be sent. A workspace has one preview at a time and at
// most Options.MaxPreviews run in all (429 busy otherwise), counted from
// the check of the drafts on (only the body's shape and limit are checked
// before); reading the events takes at most previewReadTimeout and
// deciding them at most previewEvalTimeout.
func (h *handler) preview(c echo.Context) error {
	ws := c.Param("workspace_id")
	body, err := httpserver.ReadBody(c, MaxBody)
	if err != nil {
		return err
	}
	var req previewRequest
	if err := decodeObject(body, &req); err != nil {
		return err
	}
	if err := previewNulls(body); err != nil {
		return err
	}
	limit := MaxPreviewEvents
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > MaxPreviewEvents {
			return httpserver.BadRequest("limit", "from 1 to 500 events")
		}
		limit = *req.Limit
	}
	// The slot first: checking and compiling drafts costs CPU (a 2 MiB
	// plan of costly schemas, seconds), which the slots bound as they bound
	// reading and deciding.
	if err := h.previews.acquire(ws); err != nil {
		return h.previews.refuse(c, err)
	}
	defer h.previews.release(ws)
	p, err := h.pipeline(c, req)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(c.Request().Context(), previewReadTimeout)
	defer cancel()
	page, err := h.o.Recent.List(rctx, store.Filter{WorkspaceID: ws}, nil, limit)
	if err != nil {
		if rctx.Err() != nil {
			return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: "the workspace's events could not be read in time; retry"}
		}
		return err
	}
	ectx, ecancel := context.WithTimeout(c.Request().Context(), previewEvalTimeout)
	defer ecancel()
	return c.JSON(http.StatusOK, runPreview(ectx, p, page.Events))
}

// pipeline builds the pipeline of the preview: drafts where the request
// has them, the saved settings elsewhere (compiled as the forwarder
// compiles them: one that does not compile is the default).
func (h *handler) pipeline(c echo.Context, req previewRequest) (trackingplan.Pipeline, error) {
	ws := c.Param("workspace_id")
	var p trackingplan.Pipeline
	names := func(name string) error { return h.o.Events.CheckName(ws, name) }
	fwd, err := h.current(ws, trackingplan.KindForwarding)
	if err != nil {
		return p, err
	}
	p.HardFailuresOnly = fwd.(*trackingplan.Forwarding).HardFailuresOnly
	if req.HardFailuresOnly != nil {
		p.HardFailuresOnly = *req.HardFailuresOnly
	}
	if p.Plan, err = h.previewPlan(c, req.Plan, names); err != nil {
		return p, err
	}
	old, err := h.current(ws, trackingplan.KindFilters)
	if err != nil {
		return p, err
	}
	v := old
	if req.Filters != nil {
		if v, err = parse(trackingplan.KindFilters, req.Filters, old, names); err != nil {
			return p, draftError("destination_filters", err)
		}
	}
	p.Filters, _ = v.(*trackingplan.Filters).Compile()
	return p, nil
}

// previewPlan compiles the draft plan, or the saved one when there is no
// draft. A draft is compiled once, as it is checked (a large plan takes
// seconds); a saved plan that no longer compiles is the default (nil), as
// in the forwarder. Either is compiled in a plan check's slot (429 busy
// otherwise), so that previews add no plan compiles to the ones PUT and
// validate may run at once.
func (h *handler) previewPlan(c echo.Context, draft json.RawMessage, names trackingplan.EventNames) (*trackingplan.CompiledPlan, error) {
	ws := c.Param("workspace_id")
	var cp *trackingplan.CompiledPlan
	if draft == nil {
		saved, err := h.current(ws, trackingplan.KindPlan)
		if err != nil {
			return nil, err
		}
		err = h.checking(c, func() error {
			cp, _ = saved.(*trackingplan.Plan).Compile()
			return nil
		})
		return cp, err
	}
	err := h.checking(c, func() error {
		if err := checkDocument(trackingplan.KindPlan, draft); err != nil {
			return draftError("tracking_plan", err)
		}
		var err error
		if _, cp, err = parsePlan(draft, names); err != nil {
			return draftError("tracking_plan", err)
		}
		return nil
	})
	return cp, err
}

// draftError names a draft's field under the draft's own (tracking_plan.
// or destination_filters.) in a 400.
func draftError(draft string, err error) error {
	var fe *trackingplan.FieldError
	if errors.As(err, &fe) {
		return httpserver.BadRequest(joinField(draft, fe.Field), fe.Message)
	}
	return err
}

// previewNulls refuses a null in place of any field of the preview's body
// (a 400 naming it), as the settings' PUTs refuse nulls: null would read
// as the field left out, the saved setting or the default, without a word.
// body is an object decodeObject took.
func previewNulls(body []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return httpserver.BadRequest("", "not a valid JSON object")
	}
	names := slices.Sorted(maps.Keys(fields))
	for _, name := range names {
		if string(fields[name]) == "null" {
			return httpserver.BadRequest(name, "must not be null; leave the field out for the saved setting (limit: the newest 500 events)")
		}
	}
	return nil
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}

// runPreview decides events (newest first) with p, stopping early
// (Complete false) when ctx ends.
func runPreview(ctx context.Context, p trackingplan.Pipeline, events []event.Event) Preview {
	out := Preview{Complete: true, DroppedBy: map[string]int{}, Filters: []FilterCount{},
		Examples: PreviewExamples{Dropped: []PreviewExample{}, Violations: []PreviewExample{}}}
	byFilter := map[string]int{}
	for i := range events {
		if ctx.Err() != nil {
			out.Complete = false
			break
		}
		ev := &events[i]
		d := p.Run(ev)
		out.Events++
		out.FilterErrors += d.FilterErrors
		if len(d.Violations) > 0 {
			out.Violations++
			if len(out.Examples.Violations) < maxPreviewExamples {
				out.Examples.Violations = append(out.Examples.Violations,
					PreviewExample{ID: ev.ID, Event: ev.Event, Violation: clip(d.Violations[0], maxViolationText)})
			}
		}
		if d.Dropped == "" {
			out.Kept++
			continue
		}
		out.Dropped++
		out.DroppedBy[d.Dropped]++
		if d.Filter != "" {
			byFilter[d.Filter]++
		}
		if len(out.Examples.Dropped) < maxPreviewExamples {
			out.Examples.Dropped = append(out.Examples.Dropped,
				PreviewExample{ID: ev.ID, Event: ev.Event, Reason: d.Dropped, Filter: d.Filter})
		}
	}
	for name, n := range byFilter {
		out.Filters = append(out.Filters, FilterCount{Name: name, Dropped: n})
	}
	slices.SortFunc(out.Filters, func(a, b FilterCount) int {
		if a.Dropped != b.Dropped {
			return b.Dropped - a.Dropped
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// clip shortens s to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
