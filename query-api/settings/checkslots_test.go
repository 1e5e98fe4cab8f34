package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/openapi"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// checkServer serves the settings routes in process, with hook run inside
// every plan check's slot. Requests go straight to ServeHTTP, which
// returns only once the handler and its deferred releases have run, so no
// test waits on a clock.
type checkServer struct {
	e     *echo.Echo
	store *memStore
	owner string
}

func newCheckServer(t *testing.T, maxChecks int, hook func(ctx context.Context, ws string)) *checkServer {
	s := &checkServer{e: httpserver.New(httpserver.Options{Name: "api"}), store: &memStore{data: map[string][]byte{}}}
	Register(s.e, Options{Store: s.store, Emitter: &recorder{}, Verifier: auth.NewHMAC(secret),
		Now:           func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
		MaxPlanChecks: maxChecks, inCheck: hook,
		Recent: &fakeLister{events: map[string][]event.Event{"ws_1": previewEvents(), "ws_2": previewEvents()}}})
	s.owner = token(t, map[string]string{"ws_1": "owner", "ws_2": "owner", "ws_3": "owner"})
	return s
}

// serve sends one request with ctx and returns its status, body and
// Retry-After.
func (s *checkServer) serve(t *testing.T, ctx context.Context, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.owner)
	req.Header.Set("Content-Type", "application/json")
	rr := httptest.NewRecorder()
	s.e.ServeHTTP(rr, req)
	var m map[string]any
	require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &m), rr.Body.String())
	return rr.Code, m, rr.Header().Get("Retry-After")
}

// planRoutes are the two routes that check a tracking plan, with a valid
// body for each.
var planRoutes = []struct{ method, route, body string }{
	{http.MethodPut, "tracking-plan", seeds[trackingplan.KindPlan]},
	{http.MethodPost, "tracking-plan/validate", `{"event": "Source Created", "properties": {"type": "object"}}`},
}

// holder blocks plan checks of the workspaces in hold until released.
type holder struct {
	hold    map[string]bool
	entered chan string
	release chan struct{}
}

func newHolder(ws ...string) *holder {
	h := &holder{hold: map[string]bool{}, entered: make(chan string, len(ws)), release: make(chan struct{})}
	for _, w := range ws {
		h.hold[w] = true
	}
	return h
}

func (h *holder) hook(_ context.Context, ws string) {
	if h.hold[ws] {
		h.entered <- ws
		<-h.release
	}
}

// held starts method path with body in the background and returns, once
// its plan check holds its slot (h's hook entered), where its status code
// will arrive.
func (s *checkServer) held(t *testing.T, h *holder, method, path, body string) <-chan int {
	done := make(chan int, 1)
	go func() {
		code, _, _ := s.serve(t, context.Background(), method, path, body)
		done <- code
	}()
	<-h.entered
	return done
}

func busyCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestABusyWorkspacesPlanChecksAre429WhileOthersSucceed(t *testing.T) {
	for _, held := range planRoutes {
		for _, other := range planRoutes {
			t.Run(held.route+" then "+other.route, func(t *testing.T) {
				h := newHolder("ws_1")
				s := newCheckServer(t, 2, h.hook)
				done := s.held(t, h, held.method, "/v1/workspaces/ws_1/"+held.route, held.body)
				code, body, retry := s.serve(t, context.Background(), other.method, "/v1/workspaces/ws_1/"+other.route, other.body)
				require.Equal(t, http.StatusTooManyRequests, code, body)
				require.Equal(t, "busy", busyCode(body))
				require.Contains(t, body["error"].(map[string]any)["message"], "for this workspace")
				require.Equal(t, "5", retry)
				code, body, _ = s.serve(t, context.Background(), other.method, "/v1/workspaces/ws_2/"+other.route, other.body)
				require.Equal(t, http.StatusOK, code, "another workspace is not held up: %v", body)
				close(h.release)
				require.Equal(t, http.StatusOK, <-done)
				code, body, _ = s.serve(t, context.Background(), other.method, "/v1/workspaces/ws_1/"+other.route, other.body)
				require.Equal(t, http.StatusOK, code, "the slot is free again: %v", body)
			})
		}
	}
}

func TestABusyWorkspacesPlanIsNotLookedAt(t *testing.T) {
	h := newHolder("ws_1")
	s := newCheckServer(t, 2, h.hook)
	done := s.held(t, h, http.MethodPut, "/v1/workspaces/ws_1/tracking-plan", seeds[trackingplan.KindPlan])
	// A plan with a wrong schema is refused busy, not checked.
	code, body, _ := s.serve(t, context.Background(), http.MethodPut, "/v1/workspaces/ws_1/tracking-plan",
		`{"events": {"Source Created": {"properties": {"type": "nonsense"}}}}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	// Other settings of the workspace are not plan checks.
	code, body, _ = s.serve(t, context.Background(), http.MethodPut, "/v1/workspaces/ws_1/forwarding", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	close(h.release)
	require.Equal(t, http.StatusOK, <-done)
	_, stored := s.store.Get(trackingplan.Key("ws_1", trackingplan.KindPlan))
	require.True(t, stored)
}

func TestAPreviewsPlanTakesAPlanCheckSlot(t *testing.T) {
	h := newHolder("ws_1")
	s := newCheckServer(t, 2, h.hook)
	done := s.held(t, h, http.MethodPut, "/v1/workspaces/ws_1/tracking-plan", seeds[trackingplan.KindPlan])
	draft := `{"tracking_plan": ` + seeds[trackingplan.KindPlan] + `}`
	code, body, retry := s.serve(t, context.Background(), http.MethodPost, "/v1/workspaces/ws_1/forwarding/preview", draft)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	require.Equal(t, "5", retry)
	// The saved plan is compiled for a preview too, in the same slot.
	code, body, _ = s.serve(t, context.Background(), http.MethodPost, "/v1/workspaces/ws_1/forwarding/preview", `{}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	for _, b := range []string{draft, `{}`} {
		code, body, _ = s.serve(t, context.Background(), http.MethodPost, "/v1/workspaces/ws_2/forwarding/preview", b)
		require.Equal(t, http.StatusOK, code, body)
		require.EqualValues(t, 10, body["events"])
	}
	close(h.release)
	require.Equal(t, http.StatusOK, <-done)
	code, body, _ = s.serve(t, context.Background(), http.MethodPost, "/v1/workspaces/ws_1/forwarding/preview", draft)
	require.Equal(t, http.StatusOK, code, body)
}

func TestPlanChecksHaveAGlobalCap(t *testing.T) {
	h := newHolder("ws_1", "ws_2")
	s := newCheckServer(t, 2, h.hook)
	var done []<-chan int
	for i, ws := range []string{"ws_1", "ws_2"} {
		r := planRoutes[i]
		done = append(done, s.held(t, h, r.method, "/v1/workspaces/"+ws+"/"+r.route, r.body))
	}
	for _, r := range planRoutes {
		code, body, retry := s.serve(t, context.Background(), r.method, "/v1/workspaces/ws_3/"+r.route, r.body)
		require.Equal(t, http.StatusTooManyRequests, code, body)
		require.Equal(t, "busy", busyCode(body))
		require.Contains(t, body["error"].(map[string]any)["message"], "too many")
		require.Equal(t, "5", retry)
	}
	close(h.release)
	require.Equal(t, http.StatusOK, <-done[0])
	require.Equal(t, http.StatusOK, <-done[1])
	for _, r := range planRoutes {
		code, body, _ := s.serve(t, context.Background(), r.method, "/v1/workspaces/ws_3/"+r.route, r.body)
		require.Equal(t, http.StatusOK, code, body)
	}
}

func TestThePlanCheckSlotIsReleasedOnEveryPath(t *testing.T) {
	bad := map[string]string{
		"tracking-plan":          `{"events": {"Source Created": {"properties": {"type": "nonsense"}}}}`,
		"tracking-plan/validate": `{"event": "Source Created", "properties": {"type": "nonsense"}}`,
	}
	for _, r := range planRoutes {
		t.Run(r.route, func(t *testing.T) {
			t.Run("refused plan", func(t *testing.T) {
				s := newCheckServer(t, 1, nil)
				code, body, _ := s.serve(t, context.Background(), r.method, "/v1/workspaces/ws_1/"+r.route, bad[r.route])
				if r.method == http.MethodPut {
					require.Equal(t, http.StatusBadRequest, code, body)
				} else {
					require.Equal(t, false, body["valid"], body)
				}
				s.requireFree(t, r.method, r.route, r.body)
			})
			t.Run("panic", func(t *testing.T) {
				var calls atomic.Int32
				s := newCheckServer(t, 1, func(context.Context, string) {
					if calls.Add(1) == 1 {
						panic("boom")
					}
				})
				code, body, _ := s.serve(t, context.Background(), r.method, "/v1/workspaces/ws_1/"+r.route, r.body)
				require.Equal(t, http.StatusInternalServerError, code, body)
				s.requireFree(t, r.method, r.route, r.body)
			})
			t.Run("client gone", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				gone := make(chan struct{})
				var calls atomic.Int32
				s := newCheckServer(t, 1, func(ctx context.Context, _ string) {
					if calls.Add(1) == 1 { // the client leaves mid-check
						cancel()
						<-ctx.Done()
						close(gone)
					}
				})
				req := httptest.NewRequestWithContext(ctx, r.method, "/v1/workspaces/ws_1/"+r.route, strings.NewReader(r.body))
				req.Header.Set("Authorization", "Bearer "+s.owner)
				s.e.ServeHTTP(httptest.NewRecorder(), req)
				<-gone
				s.requireFree(t, r.method, r.route, r.body)
			})
		})
	}
}

// requireFree asserts that no plan check slot is held: with a cap of one,
// any held slot would refuse both requests.
func (s *checkServer) requireFree(t *testing.T, method, route, body string) {
	t.Helper()
	for _, ws := range []string{"ws_1", "ws_2"} {
		code, out, _ := s.serve(t, context.Background(), method, "/v1/workspaces/"+ws+"/"+route, body)
		require.Equal(t, http.StatusOK, code, "%s: %v", ws, out)
	}
}

// TestDocumentedPlanCheckBoundsAreTheServers holds the 429 answers of the
// plan checks in schemas/openapi/openapi.json to the server's constants.
func TestDocumentedPlanCheckBoundsAreTheServers(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	for _, r := range planRoutes {
		var op struct {
			Responses map[string]struct {
				Description string `json:"description"`
				Headers     map[string]struct {
					Description string `json:"description"`
				} `json:"headers"`
			} `json:"responses"`
		}
		require.NoError(t, json.Unmarshal(doc.Paths["/v1/workspaces/{workspace_id}/"+r.route][strings.ToLower(r.method)], &op), r.route)
		resp, ok := op.Responses["429"]
		require.True(t, ok, "%s %s documents its 429", r.method, r.route)
		require.Contains(t, resp.Description, fmt.Sprintf("(%d)", DefaultMaxPlanChecks))
		require.Contains(t, resp.Headers["Retry-After"].Description, fmt.Sprintf("(%d)", int(planCheckRetry.Seconds())))
	}
}
