package settings

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSettingsBreakingTheBoundsAre400: a settings body with a key twice,
// nested too deep or with control characters is a 400 naming the field,
// and a 1,500-level tracking-plan schema is refused at once; nothing is
// stored or recorded.
func TestSettingsBreakingTheBoundsAre400(t *testing.T) {
	f := newFixture(t)
	deep := func(n int) string {
		return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
	}
	for _, c := range []struct{ path, body, field string }{
		{"forwarding", `{"enabled": false, "enabled": true}`, "enabled"},
		{"forwarding", `{"target": {"url": "https://a.example", "url": "https://b.example"}}`, "target.url"},
		{"tracking-plan", `{"events": {"Source Created": {}, "Source Created": {"properties": false}}}`, "events.Source Created"},
		{"tracking-plan", `{"events": {"Source Created": {"properties": ` + deep(1500) + `}}}`,
			"events.Source Created.properties" + strings.Repeat(".properties.a", 14) + ".properties"},
		{"destination-filters", `{"filters": [{"name": "x", "action": "drop", "action": "sample"}]}`, "filters[0].action"},
		{"destination-filters", `{"filters": [{"name": "x\u0000", "action": "drop"}]}`, "filters[0].name"},
		{"alerts", `{"enabled": true, "webhook_url": "https://hooks.example.com/x", "events": ["Source Created"], "events": []}`, "events"},
	} {
		start := time.Now()
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/"+c.path, f.owner, c.body)
		require.Less(t, time.Since(start), 2*time.Second, "answered at once")
		require.Equal(t, 400, code, "%s %s: %v", c.path, c.body, body)
		require.Equal(t, c.field, errField(body), "%s: %v", c.path, body)
	}
	require.Empty(t, f.rec.events, "nothing invalid is recorded")
	require.Empty(t, f.store.data, "nothing invalid is stored")
}
