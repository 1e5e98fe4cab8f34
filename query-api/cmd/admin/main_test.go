package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var opToken = strings.Repeat("s", 40)

// recorded is what the fake admin API received.
type recorded struct {
	method, path, auth string
	body               map[string]any
}

func fakeAPI(t *testing.T, status int, answer string) (*httptest.Server, *[]recorded) {
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorded{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization")}
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			require.NoError(t, json.Unmarshal(b, &rec.body))
		}
		got = append(got, rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func runCmd(srvURL string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := envOf(map[string]string{"AUDITTRAIL_ADMIN_URL": srvURL, "AUDITTRAIL_ADMIN_TOKENS": "ops:" + opToken})
	code := run(context.Background(), args, &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func TestCommandsSendTheirRequest(t *testing.T) {
	srv, got := fakeAPI(t, http.StatusOK, `{"ok":true}`)
	for _, tc := range []struct {
		args         []string
		method, path string
		body         map[string]any
	}{
		{[]string{"retention", "list"}, "GET", "/admin/v1/retention", nil},
		{[]string{"retention", "get", "-workspace", "ws_1"}, "GET", "/admin/v1/workspaces/ws_1/retention", nil},
		{[]string{"retention", "set", "-workspace", "ws_1", "-days", "400", "-reason", "contract"}, "PUT", "/admin/v1/workspaces/ws_1/retention",
			map[string]any{"days": float64(400), "reason": "contract"}},
		{[]string{"hold", "place", "-workspace", "ws_1", "-reason", "case 1"}, "PUT", "/admin/v1/workspaces/ws_1/legal-hold",
			map[string]any{"hold": true, "reason": "case 1"}},
		{[]string{"hold", "release", "-workspace", "ws_1", "-reason", "closed"}, "PUT", "/admin/v1/workspaces/ws_1/legal-hold",
			map[string]any{"hold": false, "reason": "closed"}},
		{[]string{"restore", "-workspace", "ws_1", "-day", "2025-03-09", "-until", "2027-01-01", "-reason", "audit"}, "POST", "/admin/v1/workspaces/ws_1/archive/restore",
			map[string]any{"day": "2025-03-09", "until": "2027-01-01", "reason": "audit"}},
	} {
		*got = nil
		code, out, errOut := runCmd(srv.URL, tc.args...)
		require.Equal(t, 0, code, errOut)
		require.JSONEq(t, `{"ok":true}`, out)
		require.Len(t, *got, 1)
		require.Equal(t, recorded{method: tc.method, path: tc.path, auth: "Bearer " + opToken, body: tc.body}, (*got)[0])
	}
}

func TestBadFlagsNameTheFlagAndSendNothing(t *testing.T) {
	srv, got := fakeAPI(t, http.StatusOK, `{}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name a command"},
		{[]string{"retention"}, "name a command"},
		{[]string{"retention", "drop"}, "name a command"},
		{[]string{"retention", "get"}, "flag -workspace: required"},
		{[]string{"retention", "get", "-workspace", "../x"}, "flag -workspace"},
		{[]string{"retention", "get", "-workspace", "ws/1"}, "flag -workspace"},
		{[]string{"retention", "set", "-workspace", "ws_1"}, "flag -days"},
		{[]string{"retention", "set", "-workspace", "ws_1", "-days", "3651"}, "flag -days"},
		{[]string{"retention", "set", "-workspace", "ws_1", "-days", "ten"}, "-days"},
		{[]string{"retention", "set", "-workspace", "ws_1", "-days", "30", "-reason", strings.Repeat("r", 501)}, "flag -reason: at most 500"},
		{[]string{"retention", "get", "-workspace", "ws_1", "-days", "30"}, "flag -days: not used"},
		{[]string{"hold", "place", "-workspace", "ws_1"}, "flag -reason: required"},
		{[]string{"restore", "-workspace", "ws_1", "-day", "yesterday", "-until", "2027-01-01", "-reason", "x"}, "flag -day"},
		{[]string{"restore", "-workspace", "ws_1", "-day", "2025-01-01", "-reason", "x"}, "flag -until"},
		{[]string{"retention", "list", "extra"}, "unexpected argument"},
		{[]string{"retention", "list", "-url", "http://10.0.0.5:8085"}, "flag -url (AUDITTRAIL_ADMIN_URL): plain http only to a loopback address"},
		{[]string{"retention", "list", "-url", "https://u:p@admin.example"}, "flag -url"},
		{[]string{"retention", "list", "-url", "ftp://admin.example"}, "flag -url"},
		{[]string{"retention", "list", "-token-file", "/nonexistent/file"}, "flag -token-file"},
	} {
		code, _, errOut := runCmd(srv.URL, tc.args...)
		require.Equal(t, 2, code, "%v", tc.args)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
		require.NotContains(t, errOut, opToken)
	}
	require.Empty(t, *got)

	// No token at all.
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"retention", "list"}, &out, &errOut, envOf(map[string]string{"AUDITTRAIL_ADMIN_URL": srv.URL}))
	require.Equal(t, 2, code)
	require.Contains(t, errOut.String(), "no operator token: set AUDITTRAIL_ADMIN_TOKENS")
}

func TestTokenFile(t *testing.T) {
	srv, got := fakeAPI(t, http.StatusOK, `{}`)
	f := filepath.Join(t.TempDir(), "token")
	other := strings.Repeat("f", 36)
	require.NoError(t, os.WriteFile(f, []byte(other+"\n"), 0o600))
	code, _, errOut := runCmd(srv.URL, "retention", "list", "-token-file", f)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "Bearer "+other, (*got)[0].auth)
}

func TestRefusalsNameTheFlag(t *testing.T) {
	srv, _ := fakeAPI(t, http.StatusUnprocessableEntity,
		`{"error":{"code":"archive_not_verified","field":"day","message":"the archive does not verify","details":["row evt_1 (leaf 3): altered"]}}`)
	code, out, errOut := runCmd(srv.URL, "restore", "-workspace", "ws_1", "-day", "2025-03-09", "-until", "2027-01-01", "-reason", "x")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "flag -day: the archive does not verify")
	require.Contains(t, errOut, "row evt_1 (leaf 3): altered")
	require.Contains(t, errOut, "422 archive_not_verified")

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	code, _, errOut = runCmd(down.URL, "retention", "list")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "connection refused")
	require.NotContains(t, errOut, opToken)
}

// TestOperatorChoosesTheirEntry: with several operators in the variable,
// -operator picks the token, so the change is recorded under its name;
// without it the command refuses rather than send someone else's.
func TestOperatorChoosesTheirEntry(t *testing.T) {
	srv, got := fakeAPI(t, http.StatusOK, `{}`)
	bobToken := strings.Repeat("b", 40)
	env := envOf(map[string]string{"AUDITTRAIL_ADMIN_URL": srv.URL, "AUDITTRAIL_ADMIN_TOKENS": "ops:" + opToken + ", bob:" + bobToken})
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"retention", "list"}, &out, &errOut, env))
	require.Contains(t, errOut.String(), "flag -operator: required, AUDITTRAIL_ADMIN_TOKENS has several operators (ops, bob)")
	require.NotContains(t, errOut.String(), bobToken)
	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"retention", "list", "-operator", "eve"}, &out, &errOut, env))
	require.Contains(t, errOut.String(), `flag -operator: "eve" is not in`)
	require.Empty(t, *got)
	require.Equal(t, 0, run(context.Background(), []string{"retention", "list", "-operator", "bob"}, &out, &errOut, env))
	require.Equal(t, "Bearer "+bobToken, (*got)[0].auth)
}
