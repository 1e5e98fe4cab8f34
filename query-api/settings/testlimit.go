package settings

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
)

// DefaultMaxTestCalls is the default of Options.MaxTestCalls.
const DefaultMaxTestCalls = 8

// testCalls limits the test calls in progress: one per workspace at a
// time, and at most limit in all, so that slow targets cannot hold many API
// requests open for testTimeout each. Safe for concurrent use.
type testCalls struct {
	mu    sync.Mutex
	busy  map[string]bool
	limit int
}

func newTestCalls(limit int) *testCalls {
	return &testCalls{busy: map[string]bool{}, limit: limit}
}

// acquire takes the workspace's slot, or answers why it cannot: a
// *httpserver.Error 429 "busy" (the caller must set Retry-After).
func (l *testCalls) acquire(ws string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.busy[ws]:
		return &httpserver.Error{Status: http.StatusTooManyRequests, Code: "busy",
			Message: "a test call for this workspace is in progress; retry when it has finished"}
	case len(l.busy) >= l.limit:
		return &httpserver.Error{Status: http.StatusTooManyRequests, Code: "busy",
			Message: "too many test calls are in progress; retry shortly"}
	}
	l.busy[ws] = true
	return nil
}

func (l *testCalls) release(ws string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.busy, ws)
}

// busy answers a refused test call: 429 with Retry-After set to the
// longest a call in progress can take.
func busy(c echo.Context, err error) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(testTimeout.Seconds())))
	return err
}
