package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/browsertest"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// settingsAPI answers the settings editors' endpoints as their contracts
// say: GET and PUT of the tracking plan, destination filters and alerts,
// the two validate routes and the preview, with the trackingplan
// package's own rules and pipeline over the contract API's events.
type settingsAPI struct {
	events []event.Event

	mu    sync.Mutex
	saved map[string]map[string]any // by kind
	puts  map[string][]map[string]any
	seen  map[string]int // requests by route suffix
	// failAlerts makes GET .../alerts answer 500.
	failAlerts bool
}

func newSettingsAPI(t *testing.T, c *contractAPI) *settingsAPI {
	s := &settingsAPI{saved: map[string]map[string]any{
		trackingplan.KindPlan:    {"events": map[string]any{}, "unplanned_events": "allow", "unplanned_properties": "allow", "on_violation": "allow"},
		trackingplan.KindFilters: {"filters": []any{}},
		trackingplan.KindAlerts:  {"enabled": false, "webhook_url": "https://hooks.example.com/****ab12", "events": []any{}},
	}, puts: map[string][]map[string]any{}, seen: map[string]int{}}
	for _, m := range c.events["ws_1"] {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		var ev event.Event
		require.NoError(t, json.Unmarshal(b, &ev))
		s.events = append(s.events, ev)
	}
	return s
}

func (s *settingsAPI) count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[route]
}

func (s *settingsAPI) lastPut(kind string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.puts[kind]
	if len(p) == 0 {
		return nil
	}
	return p[len(p)-1]
}

func badField(c echo.Context, err error) error {
	fe, ok := err.(*trackingplan.FieldError)
	if !ok {
		return envelope(c, http.StatusBadRequest, "invalid_settings", err.Error())
	}
	return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "invalid_settings", "message": fe.Message, "field": fe.Field}})
}

func (s *settingsAPI) register(e *echo.Echo) {
	ws := e.Group("/v1/workspaces/ws_1")
	for _, kind := range []string{trackingplan.KindPlan, trackingplan.KindFilters, trackingplan.KindAlerts} {
		ws.GET("/"+kind, func(c echo.Context) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.failAlerts && kind == trackingplan.KindAlerts {
				return envelope(c, http.StatusInternalServerError, "internal", "internal error")
			}
			return c.JSON(http.StatusOK, s.saved[kind])
		})
		ws.PUT("/"+kind, func(c echo.Context) error {
			var body map[string]any
			raw, err := readAll(c)
			if err == nil {
				err = json.Unmarshal(raw, &body)
			}
			if err != nil {
				return envelope(c, http.StatusBadRequest, "invalid_settings", "not JSON")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.puts[kind] = append(s.puts[kind], body)
			saved := map[string]any{}
			for k, v := range body {
				saved[k] = v
			}
			if _, ok := body["webhook_url"]; !ok && kind == trackingplan.KindAlerts {
				saved["webhook_url"] = s.saved[kind]["webhook_url"] // omitted: kept
				raw, _ = json.Marshal(saved)
			}
			if err := compile(kind, raw); err != nil {
				return badField(c, err)
			}
			s.saved[kind] = saved
			return c.JSON(http.StatusOK, saved)
		})
	}
	ws.POST("/destination-filters/validate", func(c echo.Context) error {
		var req struct{ If string }
		if err := c.Bind(&req); err != nil {
			return envelope(c, http.StatusBadRequest, "invalid_parameter", "not JSON")
		}
		s.mu.Lock()
		s.seen["condition"]++
		s.mu.Unlock()
		f := trackingplan.Filters{Filters: []trackingplan.Filter{{Name: "c", Enabled: true, If: req.If, Action: "drop"}}}
		_, err := f.Compile()
		if err == nil {
			err = f.ValidateNew(func(string) error { return nil })
		}
		if err != nil {
			return c.JSON(http.StatusOK, map[string]any{"valid": false, "message": err.(*trackingplan.FieldError).Message})
		}
		return c.JSON(http.StatusOK, map[string]any{"valid": true})
	})
	ws.POST("/tracking-plan/validate", func(c echo.Context) error {
		var req struct {
			Event      string          `json:"event"`
			Properties json.RawMessage `json:"properties"`
		}
		if err := c.Bind(&req); err != nil {
			return envelope(c, http.StatusBadRequest, "invalid_parameter", "not JSON")
		}
		s.mu.Lock()
		s.seen["schema"]++
		s.mu.Unlock()
		p := trackingplan.Plan{Events: map[string]trackingplan.PlanEvent{req.Event: {Properties: req.Properties}}}
		if _, err := p.Compile(); err != nil {
			fe := err.(*trackingplan.FieldError)
			return c.JSON(http.StatusOK, map[string]any{"valid": false, "field": "properties", "message": fe.Message})
		}
		return c.JSON(http.StatusOK, map[string]any{"valid": true})
	})
	ws.POST("/forwarding/preview", func(c echo.Context) error {
		var req struct {
			Plan    json.RawMessage `json:"tracking_plan"`
			Filters json.RawMessage `json:"destination_filters"`
		}
		if err := c.Bind(&req); err != nil {
			return envelope(c, http.StatusBadRequest, "invalid_parameter", "not JSON")
		}
		s.mu.Lock()
		s.seen["preview"]++
		// Omitted drafts are the saved settings.
		if req.Filters == nil {
			req.Filters, _ = json.Marshal(s.saved[trackingplan.KindFilters])
		}
		if req.Plan == nil {
			req.Plan, _ = json.Marshal(s.saved[trackingplan.KindPlan])
		}
		s.mu.Unlock()
		var p trackingplan.Pipeline
		if req.Filters != nil {
			var f trackingplan.Filters
			if err := trackingplan.Decode(req.Filters, &f); err != nil {
				return badField(c, err)
			}
			cf, err := f.Compile()
			if err != nil {
				return badField(c, err)
			}
			p.Filters = cf
		}
		if req.Plan != nil {
			var pl trackingplan.Plan
			if err := trackingplan.Decode(req.Plan, &pl); err != nil {
				return badField(c, err)
			}
			cp, err := pl.Compile()
			if err != nil {
				return badField(c, err)
			}
			p.Plan = cp
		}
		out := map[string]any{"events": len(s.events), "complete": true, "kept": 0, "dropped": 0, "violations": 0, "filter_errors": 0}
		byReason, byFilter := map[string]int{}, map[string]int{}
		kept, dropped, violations := 0, 0, 0
		var examples []map[string]any
		for i := range s.events {
			d := p.Run(&s.events[i])
			if len(d.Violations) > 0 {
				violations++
			}
			if d.Dropped == "" {
				kept++
				continue
			}
			dropped++
			byReason[d.Dropped]++
			if d.Filter != "" {
				byFilter[d.Filter]++
			}
			if len(examples) < 5 {
				examples = append(examples, map[string]any{"id": s.events[i].ID, "event": s.events[i].Event, "reason": d.Dropped, "filter": d.Filter})
			}
		}
		var filters []map[string]any
		for n, k := range byFilter {
			filters = append(filters, map[string]any{"name": n, "dropped": k})
		}
		out["kept"], out["dropped"], out["violations"], out["dropped_by"], out["filters"] = kept, dropped, violations, byReason, filters
		out["examples"] = map[string]any{"dropped": examples, "violations": []any{}}
		return c.JSON(http.StatusOK, out)
	})
}

func readAll(c echo.Context) ([]byte, error) {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Request().Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if err.Error() == "EOF" {
				return []byte(b.String()), nil
			}
			return nil, err
		}
	}
}

// compile applies the save rules of kind that need no event catalogue.
func compile(kind string, raw []byte) error {
	switch kind {
	case trackingplan.KindPlan:
		var p trackingplan.Plan
		if err := trackingplan.Decode(raw, &p); err != nil {
			return err
		}
		_, err := p.Compile()
		return err
	case trackingplan.KindFilters:
		var f trackingplan.Filters
		if err := trackingplan.Decode(raw, &f); err != nil {
			return err
		}
		if _, err := f.Compile(); err != nil {
			return err
		}
		return f.ValidateNew(func(string) error { return nil })
	case trackingplan.KindAlerts:
		var a trackingplan.Alerts
		if err := trackingplan.Decode(raw, &a); err != nil {
			return err
		}
		return a.Validate()
	}
	return nil
}

// TestSettingsEditors drives the Rules drawer (tracking plan, filters,
// alerts) and the forwarding target card in headless Chromium at desktop
// (1440x900) and phone (390x844) sizes: what the page shows, what it
// sends, the checks while typing, the preview, keyboard use, and axe-core
// on every editor at both sizes.
func TestSettingsEditors(t *testing.T) {
	browsertest.Require(t)
	api := newContractAPI(time.Now().UTC())
	settings := newSettingsAPI(t, api)
	e := echo.New()
	web.Register(e)
	settings.register(e)
	api.register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	b := browsertest.New(t, 1440, 900)
	token := fakeToken(fmt.Sprintf(`{"sub":"usr_1","email":"alice@example.com","exp":%d,"workspaces":{"ws_1":"owner"}}`, time.Now().Add(time.Hour).Unix()))
	waitJS := func(expr, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return b.Check(expr) }, 20*time.Second, 50*time.Millisecond, msg)
	}
	text := func(id string) string {
		t.Helper()
		return browsertest.Eval[string](b, `document.getElementById('`+id+`').textContent`)
	}
	const shots = "page-editors"

	b.Do(chromedp.EmulateViewport(1440, 900), chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SetValue(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr`)))

	// The forwarding drawer's target card: URL, whether a key is set, and
	// the test event's outcome in words.
	b.Do(chromedp.Click(chromedp.ID("open-forwarding")), chromedp.WaitVisible(chromedp.ID("fwd-target")))
	require.Equal(t, "NameNo nameURLhttps://api.example.comWrite keySet (••••••3xyz)ForwardingOff", text("fwd-target-fields"))
	b.Do(chromedp.SendKeys(chromedp.ID("fwd-name"), "Warehouse source"), chromedp.Click(chromedp.ID("fwd-save")))
	waitJS(`document.getElementById('fwd-target-fields').textContent.startsWith('NameWarehouse source')`, "the name is saved and shown")
	api.mu.Lock()
	require.Equal(t, map[string]any{"url": "https://api.example.com", "name": "Warehouse source"}, api.puts[len(api.puts)-1]["target"], "the key is kept")
	api.mu.Unlock()

	// Saved targets: add one, test it, switch to it, remove the old one.
	api.mu.Lock()
	putsBefore := len(api.puts)
	api.mu.Unlock()
	b.Do(chromedp.Click(chromedp.CSS(`#fwd-add summary`)), chromedp.WaitVisible(chromedp.ID("fwd-add-name")),
		chromedp.SendKeys(chromedp.ID("fwd-add-name"), "Staging"),
		chromedp.SendKeys(chromedp.ID("fwd-add-url"), "https://staging.example.com"),
		chromedp.SendKeys(chromedp.ID("fwd-add-key"), "wk_staging_5678\n"))
	waitJS(`document.querySelectorAll('#fwd-saved li').length === 1`, "added (Enter in the form adds, it does not save the drawer)")
	require.Equal(t, "StagingURLhttps://staging.example.comWrite keySet (••••••5678)", browsertest.Eval[string](b,
		`[...document.querySelector('#fwd-saved li').children].slice(0, 2).map(x => x.textContent).join('')`))
	api.mu.Lock()
	put := api.puts[len(api.puts)-1]
	require.Len(t, api.puts, putsBefore+1, "one PUT: Enter in the add form does not also save the drawer's form")
	api.mu.Unlock()
	require.Equal(t, map[string]any{"enabled": false, "hard_failures_only": false,
		"target":        map[string]any{"name": "Warehouse source", "url": "https://api.example.com"},
		"saved_targets": []any{map[string]any{"name": "Staging", "url": "https://staging.example.com", "write_key": "wk_staging_5678"}}}, put,
		"the new key once, no other key")
	b.RequireAccessible("the saved targets (desktop)")
	b.Do(chromedp.Click(chromedp.CSS(`#fwd-saved li button[aria-label="Send test event to “Staging”"]`)))
	waitJS(`document.querySelector('#fwd-saved li .test-outcome').textContent.startsWith('Delivered:')`, "the saved target's outcome in words")
	api.mu.Lock()
	require.Equal(t, "Staging", api.testTargets[len(api.testTargets)-1])
	api.mu.Unlock()
	b.Do(chromedp.Click(chromedp.CSS(`#fwd-saved li button[aria-label="Use this target: “Staging”"]`)))
	waitJS(`document.getElementById('fwd-target-fields').textContent.startsWith('NameStagingURLhttps://staging.example.comWrite keySet (••••••5678)')`, "switched")
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.getElementById('fwd-target-title')`), "focus on the current target")
	require.Equal(t, "Warehouse source", browsertest.Eval[string](b, `document.querySelector('#fwd-saved li .rule-title').textContent`))
	require.Contains(t, browsertest.Eval[string](b, `document.querySelector('#fwd-saved li').textContent`), "Set (••••••3xyz)", "the old target keeps its key")
	api.mu.Lock()
	put = api.puts[len(api.puts)-1]
	api.mu.Unlock()
	require.Equal(t, map[string]any{"name": "Staging", "url": "https://staging.example.com"}, put["target"], "no key sent")
	require.Equal(t, []any{map[string]any{"name": "Warehouse source", "url": "https://api.example.com"}}, put["saved_targets"], "no key sent")
	require.Equal(t, "https://staging.example.com", browsertest.Eval[string](b, `document.getElementById('fwd-url').value`), "the form shows the new target")
	b.Screenshot(shots, "desktop-targets")
	b.Do(chromedp.Click(chromedp.CSS(`#fwd-saved li button[aria-label="Remove “Warehouse source”"]`)))
	waitJS(`document.querySelectorAll('#fwd-saved li').length === 0 && !document.getElementById('fwd-saved-empty').hidden`, "removed")
	b.Do(chromedp.Click(chromedp.ID("fwd-test")))
	waitJS(`document.getElementById('fwd-outcome').textContent === 'Delivered: the target accepted the test event (HTTP 200).'`, "outcome in words")
	b.RequireAccessible("the forwarding target (desktop)")
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("forwarding")))

	// Tracking plan: add an event, write its schema (checked as typed),
	// block violations, save.
	b.Do(chromedp.Click(chromedp.ID("open-editors")), chromedp.WaitVisible(chromedp.ID("plan-new")))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.getElementById('ed-tab-plan')`), "focus on the first tab")
	b.RequireAccessible("the tracking plan editor (desktop)")
	b.Do(chromedp.SendKeys(chromedp.ID("plan-new"), "Source Created"), chromedp.Click(chromedp.ID("plan-add")),
		chromedp.WaitVisible(chromedp.CSS(`#ed-plan .rule textarea`)))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.querySelector('#ed-plan .rule textarea')`), "focus on the new schema")
	b.Do(chromedp.SendKeys(chromedp.CSS(`#ed-plan .rule textarea`), `{"type": "object", "properties": {"kind": `))
	waitJS(`document.querySelector('#ed-plan .check-status').textContent.startsWith('Not valid JSON')`, "a local JSON error")
	require.Zero(t, settings.count("schema"), "JSON that does not parse is not sent")
	b.Do(chromedp.SendKeys(chromedp.CSS(`#ed-plan .rule textarea`), `{"minimum": "x"}}}`))
	waitJS(`document.querySelector('#ed-plan .check-status').textContent.includes('minimum')`, "the server's schema error")
	require.Equal(t, "true", browsertest.Eval[string](b, `document.querySelector('#ed-plan .rule textarea').getAttribute('aria-invalid')`))
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#ed-plan .rule textarea').value = ''`), chromedp.SendKeys(chromedp.CSS(`#ed-plan .rule textarea`), `{"type": "object", "required": ["kind"]}`))
	waitJS(`document.querySelector('#ed-plan .check-status').textContent === 'Schema accepted.'`, "schema accepted")
	b.Do(chromedp.SetValue(chromedp.ID("plan-on_violation"), "block"), chromedp.Click(chromedp.ID("plan-preview")))
	waitJS(`document.getElementById('plan-preview-result').textContent.startsWith('Of the last 13 events, these settings would drop 4 and forward 9.')`,
		"the plan blocks the 4 Source Created events without kind")
	b.Do(chromedp.Click(chromedp.ID("ed-save")))
	waitJS(`document.getElementById('ed-message').textContent.startsWith('Saved.')`, "plan saved")
	require.Equal(t, map[string]any{"events": map[string]any{"Source Created": map[string]any{"properties": map[string]any{"type": "object", "required": []any{"kind"}}}},
		"unplanned_events": "allow", "unplanned_properties": "allow", "on_violation": "block"}, settings.lastPut(trackingplan.KindPlan))

	// Filters: keyboard to the tab, add two, check the condition as typed,
	// reorder, preview and save.
	b.Do(chromedp.Focus(chromedp.ID("ed-tab-plan")), chromedp.KeyEvent(kb.ArrowRight))
	waitJS(`!document.getElementById('ed-filters').hidden && document.activeElement === document.getElementById('ed-tab-filters')`, "arrow key moves to the Filters tab")
	b.Do(chromedp.Click(chromedp.ID("flt-add")))
	b.Do(chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(1) input[type=text]`), "No failures"),
		chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(1) textarea`), "event =="))
	waitJS(`document.querySelector('#ed-filters .rule:nth-child(1) .check-status').dataset.kind === 'error'`, "a syntax error shown as typed")
	require.Contains(t, browsertest.Eval[string](b, `document.querySelector('#ed-filters .rule:nth-child(1) .check-status').textContent`), "Syntax error")
	b.Do(chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(1) textarea`), " 'Audience Run Failed'"))
	waitJS(`document.querySelector('#ed-filters .rule:nth-child(1) .check-status').textContent === 'Condition accepted.'`, "condition accepted")
	b.Do(chromedp.Click(chromedp.ID("flt-add")))
	b.Do(chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(2) input[type=text]`), "Half of sources"),
		chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(2) textarea`), "event == 'Source Created'"),
		chromedp.SetValue(chromedp.CSS(`#ed-filters .rule:nth-child(2) select`), "sample"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#ed-filters .rule:nth-child(2) select').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(chromedp.CSS(`#ed-filters .rule:nth-child(2) input[type=number]`)),
		chromedp.SendKeys(chromedp.CSS(`#ed-filters .rule:nth-child(2) input[type=number]`), "0"))
	b.Do(chromedp.Click(chromedp.CSS(`#ed-filters .rule:nth-child(2) .row-actions button:nth-child(1)`)))
	require.Equal(t, []string{"1. Half of sources", "2. No failures"},
		browsertest.Eval[[]string](b, `[...document.querySelectorAll('#ed-filters .rule-title')].map(x => x.textContent)`), "moved up")
	require.Equal(t, "Move down “Half of sources”", browsertest.Eval[string](b, `document.activeElement.getAttribute('aria-label')`),
		"at the top, the focus moves to the card's other move button")
	b.RequireAccessible("the filters editor (desktop)")
	b.Do(chromedp.Click(chromedp.ID("flt-preview")))
	waitJS(`document.getElementById('flt-preview-result').textContent.startsWith('Of the last 13 events, these settings would drop 8 and forward 5.')`, "preview counts")
	require.Contains(t, text("flt-preview-result"), "4 events blocked for violating the tracking plan", "the saved plan applies first")
	require.Contains(t, text("flt-preview-result"), "4 events dropped by the filter “No failures”")
	require.NotContains(t, text("flt-preview-result"), "Half of sources", "the blocked events never reach it")
	b.Screenshot(shots, "desktop-filters")
	b.Do(chromedp.Click(chromedp.ID("ed-save")))
	waitJS(`document.getElementById('ed-message').textContent.startsWith('Saved.')`, "filters saved")
	require.Equal(t, map[string]any{"filters": []any{
		map[string]any{"name": "Half of sources", "enabled": true, "if": "event == 'Source Created'", "action": "sample", "percent": float64(0)},
		map[string]any{"name": "No failures", "enabled": true, "if": "event == 'Audience Run Failed'", "action": "drop"},
	}}, settings.lastPut(trackingplan.KindFilters))

	// A preview uses the drafts of every tab with unsaved changes: with the
	// plan's violations let through (not saved), the sample filter drops
	// the Source Created events; a plan schema that is not JSON is shown on
	// its tab, with the focus on it.
	b.Do(chromedp.Click(chromedp.ID("ed-tab-plan")), chromedp.SetValue(chromedp.ID("plan-on_violation"), "allow"),
		chromedp.Click(chromedp.ID("ed-tab-filters")), chromedp.Click(chromedp.ID("flt-preview")))
	waitJS(`document.getElementById('flt-preview-result').textContent.includes('4 events dropped by the filter “Half of sources”')`, "the plan's draft applies")
	require.Contains(t, text("flt-preview-result"), "4 events violate the tracking plan", "violations are still counted")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#ed-plan .rule textarea').value += ' oops'`),
		chromedp.Click(chromedp.ID("flt-preview")))
	waitJS(`!document.getElementById('ed-plan').hidden && document.activeElement === document.querySelector('#ed-plan .rule textarea')`, "the plan's field, focused")
	require.Contains(t, text("ed-message"), "Not valid JSON")
	require.Contains(t, text("ed-message"), "(tracking_plan.events.Source Created.properties)")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#ed-plan .rule textarea').value = document.querySelector('#ed-plan .rule textarea').value.replace(' oops', '')`),
		chromedp.SetValue(chromedp.ID("plan-on_violation"), "block"), chromedp.Click(chromedp.ID("ed-tab-filters")))

	// A refused save names the field and puts the focus on it.
	b.AllowNetworkError("/destination-filters")
	b.Do(chromedp.SetValue(chromedp.CSS(`#ed-filters .rule:nth-child(2) input[type=text]`), "Half of sources"),
		chromedp.Click(chromedp.ID("ed-save")))
	waitJS(`document.getElementById('ed-message').dataset.kind === 'error'`, "refused")
	require.Contains(t, text("ed-message"), "(filters[1].name)")
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.querySelector('#ed-filters .rule:nth-child(2) input[type=text]')`), "focus on the field")

	// Closing over unsaved changes asks first.
	b.Do(chromedp.KeyEvent(kb.Escape))
	waitJS(`!document.getElementById('ed-discard').hidden`, "asks before discarding")
	b.Do(chromedp.Click(chromedp.ID("ed-discard-no")))
	require.True(t, browsertest.Eval[bool](b, `document.getElementById('editors').open`))
	b.Do(chromedp.SetValue(chromedp.CSS(`#ed-filters .rule:nth-child(2) input[type=text]`), "No failures"))

	// Alerts: the saved webhook is kept unless replaced or removed.
	b.Do(chromedp.Click(chromedp.ID("ed-tab-alerts")), chromedp.WaitVisible(chromedp.ID("alert-url")))
	require.Contains(t, text("alert-url-hint"), "https://hooks.example.com/****ab12")
	b.RequireAccessible("the alerts editor (desktop)")
	b.Do(chromedp.Click(chromedp.CSS(`label.switch[for="alert-enabled"]`)),
		chromedp.SendKeys(chromedp.ID("alert-find"), "warehouses dis"))
	waitJS(`document.querySelectorAll('#alert-events label:not([hidden])').length === 1`, "the list narrows")
	b.Do(chromedp.Click(chromedp.CSS(`#alert-events label:not([hidden]) input`)), chromedp.Click(chromedp.ID("ed-save")))
	waitJS(`document.getElementById('ed-message').textContent.startsWith('Saved.')`, "alerts saved")
	require.Equal(t, map[string]any{"enabled": true, "events": []any{"Warehouses Disabled"}}, settings.lastPut(trackingplan.KindAlerts),
		"no webhook_url: the saved one is kept")
	require.Equal(t, "1 event chosen.", text("alert-count"))
	require.Equal(t, "Warehouses Disabled", browsertest.Eval[string](b, `document.querySelector('#alert-events input').value`),
		"once saved, the chosen events come first")
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("editors")))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.getElementById('open-editors')`), "focus back on the Rules button")

	// A setting that cannot be loaded says so on its tab, and closing
	// does not ask about changes nobody made.
	settings.mu.Lock()
	settings.failAlerts = true
	settings.mu.Unlock()
	b.AllowNetworkError("/alerts")
	b.Do(chromedp.Click(chromedp.ID("open-editors")), chromedp.Click(chromedp.ID("ed-tab-alerts")))
	waitJS(`document.getElementById('ed-alerts').textContent.startsWith('This setting could not be loaded')`, "the failure is said")
	require.True(t, browsertest.Eval[bool](b, `document.getElementById('ed-save').disabled`), "nothing to save")
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("editors")))
	settings.mu.Lock()
	settings.failAlerts = false
	settings.mu.Unlock()

	// Phone: every editor fits the width and passes axe-core.
	b.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.Screenshot(shots, "phone-topbar")
	require.True(t, browsertest.Eval[bool](b, browsertest.TextFits(`#workspace-value`)), "the workspace picker shows its whole text")
	require.True(t, browsertest.Eval[bool](b, `(() => { const s = document.getElementById('sign-out').getBoundingClientRect(),
		r = document.getElementById('open-editors').getBoundingClientRect(); return Math.abs(s.top - r.top) < 2; })()`),
		"Forwarding, Rules and Sign out share one row")
	b.Do(chromedp.Click(chromedp.ID("open-forwarding")), chromedp.WaitVisible(chromedp.ID("fwd-target")))
	b.RequireAccessible("the forwarding target (phone)")
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("forwarding")))
	b.Do(chromedp.Click(chromedp.ID("open-editors")), chromedp.WaitVisible(chromedp.CSS(`#ed-plan .rule textarea`)))
	for _, tab := range []string{"plan", "filters", "alerts"} {
		b.Do(chromedp.Click(chromedp.ID("ed-tab-"+tab)), chromedp.WaitVisible(chromedp.ID("ed-"+tab)))
		require.True(t, browsertest.Eval[bool](b, `(() => { const f = document.getElementById('ed-`+tab+`');
			return f.scrollWidth <= f.clientWidth && document.getElementById('editors').getBoundingClientRect().width <= 390; })()`), "%s fits the phone's width", tab)
		b.RequireAccessible("the " + tab + " editor (phone)")
		b.Screenshot(shots, "phone-"+tab)
	}
	b.RequireNoConsoleErrors()
}
