package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/browsertest"
	"github.com/audittrail/audittrail/query-api/web"
)

// TestPageShowsRetentionAndLegalHold drives the page in headless Chromium:
// under the title it says how long the workspace's events are kept (from
// GET .../retention), and while a legal hold is on it says that nothing in
// the workspace expires; switching to a workspace without a hold takes the
// notice away, and each workspace's retention is asked once.
func TestPageShowsRetentionAndLegalHold(t *testing.T) {
	browsertest.Require(t)
	now := time.Now().UTC()
	api := newContractAPI(now)
	api.events["ws_held"] = []map[string]any{{
		"id": "h-1", "workspace_id": "ws_held", "event": "Source Created", "category": "Sources",
		"timestamp": now.Add(-time.Hour).Format(time.RFC3339Nano),
		"actor":     map[string]any{"type": "user", "id": "usr_1", "name": "Alice"},
		"resource":  map[string]any{"type": "source", "id": "src_1", "name": "Web"},
	}}
	e := echo.New()
	web.Register(e)
	api.register(e)
	e.GET("/openapi.json", func(c echo.Context) error { // search is on
		return c.JSON(http.StatusOK, map[string]any{"paths": map[string]any{"/v1/workspaces/{workspace_id}/audit-events": map[string]any{
			"get": map[string]any{"parameters": []any{map[string]any{"name": "q", "in": "query"}}}}}})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	b := browsertest.New(t, 1366, 900)
	token := fakeToken(fmt.Sprintf(`{"sub":"usr_1","exp":%d,"workspaces":{"ws_held":"owner","ws_burst":"owner"}}`, now.Add(time.Hour).Unix()))
	waitJS := func(expr, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return b.Check(expr) }, 20*time.Second, 50*time.Millisecond, msg)
	}
	b.Do(chromedp.Navigate(srv.URL+"/?ws=ws_held"), chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SetValue(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr`)))
	waitJS(`!document.getElementById('legal-hold').hidden`, "the legal hold notice shows")
	require.Equal(t, "ws_held", browsertest.Eval[string](b, `document.getElementById('workspace').value`))
	require.Equal(t, "Legal hold: nothing in this workspace expires.", browsertest.Eval[string](b, `document.getElementById('legal-hold').textContent`))
	require.Equal(t, "status", browsertest.Eval[string](b, `document.getElementById('legal-hold').getAttribute('role')`))
	require.Equal(t, "Changes made in ws_held. Kept for 30 days, and longer while the legal hold is on.",
		browsertest.Eval[string](b, `document.getElementById('trail-sub').textContent`))
	require.True(t, browsertest.Eval[bool](b, browsertest.InFirstScreen(`#legal-hold`)), "the notice is on the first screen")
	b.RequireAccessible("the legal hold notice")

	// A filter change reloads the view, not the retention.
	b.Do(chromedp.Evaluate[chromedp.Void](`document.getElementById('f-q').value = 'Web'; document.getElementById('filters').requestSubmit()`))
	waitJS(`new URLSearchParams(location.search).get('q') === 'Web'`, "the search applies")
	require.False(t, browsertest.Eval[bool](b, `document.getElementById('legal-hold').hidden`), "the notice stays: %s",
		browsertest.Eval[string](b, `document.getElementById('trail-sub').textContent`))

	b.Do(chromedp.SetValue(chromedp.ID("workspace"), "ws_burst"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('workspace').dispatchEvent(new Event('change'))`))
	waitJS(`document.getElementById('trail-sub').textContent === 'Changes made in ws_burst, kept for 400 days.'`, "the other workspace's retention")
	require.True(t, browsertest.Eval[bool](b, `document.getElementById('legal-hold').hidden`), "no hold on ws_burst")
	require.Equal(t, 2, api.count("retention"), "asked once per workspace")
	b.RequireNoConsoleErrors()
}
