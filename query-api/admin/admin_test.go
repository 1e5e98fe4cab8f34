package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/admin"
	"github.com/audittrail/audittrail/schemas/event"
)

const (
	aliceToken = "alice-token-0123456789abcdef0123456789"
	bobToken   = "bob-token-0123456789abcdef0123456789abc"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// fakePolicies is the policy table in memory.
type fakePolicies struct {
	mu      sync.Mutex
	byWS    map[string]admin.Policy
	sets    int
	failSet bool
	// gets counts the reads; onGet runs before each (with its number), as
	// another instance's change would.
	gets  int
	onGet func(n int)
}

func (f *fakePolicies) Get(_ context.Context, ws string) (admin.Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.onGet != nil {
		f.onGet(f.gets)
	}
	if p, ok := f.byWS[ws]; ok {
		return p, nil
	}
	return admin.Policy{Workspace: ws, Days: 90}, nil
}

func (f *fakePolicies) Set(_ context.Context, p admin.Policy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet {
		return errors.New("clickhouse down")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	f.sets++
	f.byWS[p.Workspace] = p
	return nil
}

func (f *fakePolicies) All(context.Context) (map[string]admin.Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]admin.Policy{}
	for k, v := range f.byWS {
		out[k] = v
	}
	return out, nil
}

// fakeEmitter keeps the events, each validated as the trail would.
type fakeEmitter struct {
	mu     sync.Mutex
	events []event.Event
	fail   bool
}

func (f *fakeEmitter) Emit(_ context.Context, ev event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("kafka down")
	}
	if err := (event.Policy{Now: func() time.Time { return now }}).Validate(&ev); err != nil {
		return err
	}
	f.events = append(f.events, ev)
	return nil
}

type server struct {
	e        *echo.Echo
	policies *fakePolicies
	emitter  *fakeEmitter
}

func newServer(t *testing.T, restorer *admin.Restorer) *server {
	t.Helper()
	ops, err := admin.ParseOperators([]string{"alice:" + aliceToken, "bob@ops:" + bobToken})
	require.NoError(t, err)
	s := &server{e: httpserver.New(httpserver.Options{Name: "admin"}), policies: &fakePolicies{byWS: map[string]admin.Policy{}}, emitter: &fakeEmitter{}}
	admin.Register(s.e, admin.Options{Operators: ops, Policies: s.policies, Emitter: s.emitter, Restorer: restorer,
		Now: func() time.Time { return now }})
	return s
}

func (s *server) do(method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
	}
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	return rec
}

type apiError struct {
	Error struct {
		Code, Message, Field string
	}
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
	return e
}

func TestOperatorTokensAreRequired(t *testing.T) {
	s := newServer(t, nil)
	for _, tc := range []struct{ name, header string }{
		{"none", ""},
		{"wrong token", "Bearer " + strings.Repeat("x", 40)},
		{"a prefix of a token", "Bearer " + aliceToken[:len(aliceToken)-1]},
		{"a token and more", "Bearer " + aliceToken + "x"},
		{"not bearer", "Basic " + aliceToken},
		{"bearer without token", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/admin/v1/retention", nil)
			if tc.header != "" {
				req.Header.Set(echo.HeaderAuthorization, tc.header)
			}
			rec := httptest.NewRecorder()
			s.e.ServeHTTP(rec, req)
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			require.Equal(t, `Bearer realm="audittrail-admin"`, rec.Header().Get(echo.HeaderWWWAuthenticate))
			require.NotContains(t, rec.Body.String(), aliceToken[:10])
		})
	}
	// A token in the URL is never read.
	rec := s.do(http.MethodGet, "/admin/v1/retention?token="+aliceToken, "", "")
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	rec = s.do(http.MethodGet, "/admin/v1/retention?token=x", aliceToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Equal(t, "token", errorOf(t, rec).Error.Field)
	require.Equal(t, http.StatusOK, s.do(http.MethodGet, "/admin/v1/retention", bobToken, "").Code)
	require.Empty(t, s.emitter.events)
}

func TestParseOperatorsRefusesWeakOrAmbiguousCredentials(t *testing.T) {
	long := strings.Repeat("k", admin.MinTokenLen)
	for _, tc := range []struct {
		pairs []string
		want  string
	}{
		{[]string{long}, "entry 1: want name:token"},
		{[]string{"alice:short"}, "at least 32"},
		{[]string{":" + long}, "the name must be"},
		{[]string{"al ice:" + long}, "the name must be"},
		{[]string{"a:" + long, "b:" + long}, "entry 2 (b): the same token"},
	} {
		_, err := admin.ParseOperators(tc.pairs)
		require.ErrorContains(t, err, tc.want)
		require.NotContains(t, err.Error(), long, "never quotes a token")
	}
	ops, err := admin.ParseOperators([]string{"ops-1@example.com:" + long + ":with:colons"})
	require.NoError(t, err)
	require.Equal(t, "ops-1@example.com", ops[0].Name)
}

// events returns the events recorded in the workspace's own trail and in
// the platform trail.
func (s *server) events() (workspace, platform []event.Event) {
	for _, ev := range s.emitter.events {
		if ev.WorkspaceID == "audittrail:platform" {
			platform = append(platform, ev)
		} else {
			workspace = append(workspace, ev)
		}
	}
	return workspace, platform
}

func TestSetRetentionRecordsTheChangeThenStoresIt(t *testing.T) {
	s := newServer(t, nil)
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 400, "reason": "contract 7 requires 400 days"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var v admin.PolicyView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
	require.Equal(t, admin.PolicyView{WorkspaceID: "ws_1", Days: 400, Explicit: true, ChangedBy: "alice", ChangedAt: &now}, v)

	ws, platform := s.events()
	require.Len(t, ws, 1)
	require.Len(t, platform, 1)
	ev := ws[0]
	require.Equal(t, "Audit Retention Changed", ev.Event)
	require.Equal(t, "ws_1", ev.WorkspaceID)
	require.Equal(t, admin.OperatorActor, ev.Actor, "owners see the operator, not who")
	require.Equal(t, "audit_retention", ev.Resource.Type)
	require.JSONEq(t, `{"old_days":90,"new_days":400}`, string(ev.Properties), "no operator name, no reason unless shared")
	require.Equal(t, event.Context{}, ev.Context, "no operator address or user agent")
	require.JSONEq(t, `90`, string(ev.Changes["days"].Old))
	require.JSONEq(t, `400`, string(ev.Changes["days"].New))
	require.Equal(t, "alice", platform[0].Actor.ID)
	require.Equal(t, "ws_1", platform[0].Resource.ID)
	require.NotEmpty(t, platform[0].Context.IP)
	require.JSONEq(t, `{"workspace_id":"ws_1","old_days":90,"new_days":400,"changed_by":"alice","reason":"contract 7 requires 400 days","reason_shared":false}`,
		string(platform[0].Properties))
	require.Equal(t, 400, s.policies.byWS["ws_1"].Days)

	// The same value again changes and records nothing.
	require.Equal(t, http.StatusOK, s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", bobToken, `{"days": 400}`).Code)
	require.Len(t, s.emitter.events, 2)
	require.Equal(t, 1, s.policies.sets)

	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", bobToken, `{"days": 30, "reason": "customer asked", "share_reason": true}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	ws, platform = s.events()
	require.Len(t, ws, 2)
	require.JSONEq(t, `{"old_days":400,"new_days":30,"reason":"customer asked"}`, string(ws[1].Properties), "a shared reason")
	require.Equal(t, "bob@ops", platform[1].Actor.ID)

	rec = s.do(http.MethodGet, "/admin/v1/workspaces/ws_1/retention", aliceToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"days":30`)
	rec = s.do(http.MethodGet, "/admin/v1/workspaces/ws_2/retention", aliceToken, "")
	require.JSONEq(t, `{"workspace_id":"ws_2","days":90,"legal_hold":false,"explicit":false}`, rec.Body.String())
	rec = s.do(http.MethodGet, "/admin/v1/retention", aliceToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"workspace_id":"ws_1"`)
}

func TestBadInputIsA400NamingTheField(t *testing.T) {
	s := newServer(t, nil)
	for _, tc := range []struct {
		path, body, field string
	}{
		{"/admin/v1/workspaces/ws_1/retention", `{}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 0}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 3651}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": -5}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": "90"}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 1.5}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 1e30}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": null}`, "days"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 90, "hold": true}`, "hold"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 90, "reason": "` + strings.Repeat("é", 501) + `"}`, "reason"},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 90, "reason": "a\u0000b"}`, "reason"},
		{"/admin/v1/workspaces/ws_1/retention", `[90]`, ""},
		{"/admin/v1/workspaces/ws_1/retention", `null`, ""},
		{"/admin/v1/workspaces/ws_1/retention", ``, ""},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 90} {"days": 1}`, ""},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 90`, ""},
		{"/admin/v1/workspaces/..%2F..%2Fetc/retention", `{"days": 90}`, "workspace_id"},
		{"/admin/v1/workspaces/.hidden/retention", `{"days": 90}`, "workspace_id"},
		{"/admin/v1/workspaces/" + strings.Repeat("w", 129) + "/retention", `{"days": 90}`, "workspace_id"},
		{"/admin/v1/workspaces/ws_1/legal-hold", `{"reason": "litigation"}`, "hold"},
		{"/admin/v1/workspaces/ws_1/legal-hold", `{"hold": true}`, "reason"},
		{"/admin/v1/workspaces/ws_1/legal-hold", `{"hold": true, "reason": "   "}`, "reason"},
		{"/admin/v1/workspaces/ws_1/legal-hold", `{"hold": "yes", "reason": "x"}`, "hold"},
	} {
		rec := s.do(http.MethodPut, tc.path, aliceToken, tc.body)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%s %s: %s", tc.path, tc.body, rec.Body.String())
		require.Equal(t, tc.field, errorOf(t, rec).Error.Field, "%s %s", tc.path, tc.body)
	}
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 90, "reason": "`+strings.Repeat("x", admin.MaxBody)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Empty(t, s.emitter.events)
	require.Zero(t, s.policies.sets)
}

func TestLegalHoldPlacedAndReleased(t *testing.T) {
	s := newServer(t, nil)
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/legal-hold", aliceToken, `{"hold": true, "reason": "  case 2026-114  "}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"legal_hold":true`)
	p := s.policies.byWS["ws_1"]
	require.True(t, p.Hold)
	require.Equal(t, "case 2026-114", p.HoldReason)
	require.Equal(t, 90, p.Days, "a hold keeps the days")

	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/legal-hold", bobToken, `{"hold": true, "reason": "again"}`)
	require.Equal(t, http.StatusConflict, rec.Code)
	require.Equal(t, "hold", errorOf(t, rec).Error.Field)

	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/legal-hold", bobToken, `{"hold": false, "reason": "case closed"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.False(t, s.policies.byWS["ws_1"].Hold)
	require.Empty(t, s.policies.byWS["ws_1"].HoldReason)

	ws, platform := s.events()
	require.Len(t, ws, 2)
	require.Equal(t, "Audit Legal Hold Placed", ws[0].Event)
	require.Equal(t, admin.OperatorActor, ws[0].Actor)
	require.JSONEq(t, `{"days":90}`, string(ws[0].Properties), "the case stays the operator's")
	require.NotContains(t, string(ws[0].Properties)+ws[0].Actor.Name+ws[0].Context.IP+ws[0].Context.UserAgent, "case")
	require.Equal(t, "Audit Legal Hold Released", ws[1].Event)
	require.JSONEq(t, `true`, string(ws[0].Changes["legal_hold"].New))
	require.Len(t, platform, 2)
	require.JSONEq(t, `{"workspace_id":"ws_1","reason":"case 2026-114","reason_shared":false,"changed_by":"alice","days":90}`, string(platform[0].Properties))
	require.Equal(t, "bob@ops", platform[1].Actor.ID)
	require.JSONEq(t, `{"workspace_id":"ws_1","reason":"case closed","reason_shared":false,"changed_by":"bob@ops","days":90}`, string(platform[1].Properties))
}

func TestNothingChangesWhenTheEventCannotBeRecorded(t *testing.T) {
	s := newServer(t, nil)
	s.emitter.fail = true
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 400}`)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, errorOf(t, rec).Error.Message, "nothing was changed")
	require.Zero(t, s.policies.sets)

	s.emitter.fail, s.policies.failSet = false, true
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/legal-hold", aliceToken, `{"hold": true, "reason": "x"}`)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, errorOf(t, rec).Error.Message, "repeat the request")
	require.Len(t, s.emitter.events, 2, "the attempt is recorded in both trails")
}

// TestConcurrentChangesAreNeverLostSilently: a change stored by another
// instance between this one's read and its write is a 409 and nothing is
// stored over it; one stored right after this one's write is a 409 too;
// a host whose clock is behind the policy in force still writes a newer
// version.
func TestConcurrentChangesAreNeverLostSilently(t *testing.T) {
	s := newServer(t, nil)
	held := admin.Policy{Workspace: "ws_1", Days: 90, Hold: true, HoldReason: "case 9", ChangedBy: "carol", ChangedAt: now.Add(-time.Minute)}
	s.policies.onGet = func(n int) {
		if n == 2 { // another instance places a hold after this one read the policy
			s.policies.byWS["ws_1"] = held
		}
	}
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 30}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	require.Equal(t, "concurrent_change", errorOf(t, rec).Error.Code)
	require.Zero(t, s.policies.sets, "nothing stored over the hold")
	require.True(t, s.policies.byWS["ws_1"].Hold)

	s.policies.gets, s.policies.onGet = 0, func(n int) {
		if n == 3 { // another instance's change lands right after this one's
			p := held
			p.Days, p.ChangedAt = 45, now.Add(time.Hour)
			s.policies.byWS["ws_1"] = p
		}
	}
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 30}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	require.Contains(t, errorOf(t, rec).Error.Message, "stored over this one")

	// The policy in force was written by a host whose clock is an hour
	// ahead of this one's: this change still gets a newer time.
	s.policies.onGet = nil
	ahead := s.policies.byWS["ws_1"].ChangedAt
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 31}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	stored := s.policies.byWS["ws_1"]
	require.True(t, stored.ChangedAt.After(ahead.Truncate(time.Second).Add(time.Second-1)), "%s after %s", stored.ChangedAt, ahead)
	require.True(t, stored.Hold, "the hold stays")
}
