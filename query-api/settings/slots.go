package settings

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
)

// DefaultMaxTestCalls is the default of Options.MaxTestCalls.
const DefaultMaxTestCalls = 8

const (
	// DefaultMaxPlanChecks is the default of Options.MaxPlanChecks: as
	// many checks of a large plan (each seconds of CPU) as the API has
	// cores in its smallest deployment.
	DefaultMaxPlanChecks = 2
	// planCheckRetry is the Retry-After of a refused plan check: about
	// twice the longest check of a plan within the bounds.
	planCheckRetry = 5 * time.Second
)

// callSlots limits the calls of one kind in progress (test calls,
// previews, plan checks): one per workspace at a time, and at most limit
// in all, so that slow targets or costly settings cannot hold many API
// requests open or use all its CPU.
// Safe for concurrent use.
type callSlots struct {
	mu    sync.Mutex
	busy  map[string]bool
	limit int
	what  string        // "test call", "preview"
	retry time.Duration // the longest a call takes: Retry-After
}

func newCallSlots(limit int, what string, retry time.Duration) *callSlots {
	return &callSlots{busy: map[string]bool{}, limit: limit, what: what, retry: retry}
}

// acquire takes the workspace's slot, or answers why it cannot: a
// *httpserver.Error 429 "busy" (the caller must set Retry-After).
func (l *callSlots) acquire(ws string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.busy[ws]:
		return &httpserver.Error{Status: http.StatusTooManyRequests, Code: "busy",
			Message: "a " + l.what + " for this workspace is in progress; retry when it has finished"}
	case len(l.busy) >= l.limit:
		return &httpserver.Error{Status: http.StatusTooManyRequests, Code: "busy",
			Message: "too many " + l.what + "s are in progress; retry shortly"}
	}
	l.busy[ws] = true
	return nil
}

func (l *callSlots) release(ws string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.busy, ws)
}

// checking runs check within the workspace's plan-check slot (a 429 busy
// with Retry-After, check not run, when the slot cannot be had). The slot
// is released however check ends: an error, a panic, or the client gone
// (check is not interrupted: it is CPU-bound and bounded by the plan's own
// limits).
func (h *handler) checking(c echo.Context, check func() error) error {
	ws := c.Param("workspace_id")
	if err := h.checks.acquire(ws); err != nil {
		return h.checks.refuse(c, err)
	}
	defer h.checks.release(ws)
	if h.o.inCheck != nil {
		h.o.inCheck(c.Request().Context(), ws)
	}
	return check()
}

// refuse answers a refused call: 429 with Retry-After set to the longest
// a call in progress can take.
func (l *callSlots) refuse(c echo.Context, err error) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(l.retry.Seconds())))
	return err
}
