package settings

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
)

func TestChangesRecordThePeerUnlessBehindATrustedProxy(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name          string
		trusted       []netip.Prefix
		header, value string
		want          string
	}{
		{"X-Forwarded-For from anyone is ignored", nil, "X-Forwarded-For", "198.51.100.1", "127.0.0.1"},
		{"X-Real-IP from anyone is ignored", nil, "X-Real-IP", "198.51.100.1", "127.0.0.1"},
		{"X-Forwarded-For from a trusted proxy", loopback, "X-Forwarded-For", "6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"X-Real-IP from a trusted proxy", loopback, "X-Real-IP", "198.51.100.2", "198.51.100.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			e := httpserver.New(httpserver.Options{Name: "api", TrustedProxies: tt.trusted})
			Register(e, Options{Store: &memStore{data: map[string][]byte{}}, Emitter: rec, Verifier: auth.NewHMAC(secret)})
			srv := httptest.NewServer(e)
			defer srv.Close()
			req, err := http.NewRequest(http.MethodPut, srv.URL+"/v1/workspaces/ws_1/alerts",
				strings.NewReader(`{"enabled": true, "webhook_url": "https://hooks.example.com/services/T0/B0/x", "events": ["Warehouses Disabled"]}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token(t, map[string]string{"ws_1": "owner"}))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(tt.header, tt.value)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			require.Len(t, rec.events, 1)
			require.Equal(t, "Alert Webhook Modified", rec.events[0].Event)
			require.Equal(t, tt.want, rec.events[0].Context.IP)
		})
	}
}

func TestSettingsWrongMethodIs405WithAllow(t *testing.T) {
	f := newFixture(t)
	for _, p := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/workspaces/ws_1/forwarding", "PUT"},
		{http.MethodPost, "/v1/workspaces/ws_1/alerts", "PUT"},
		{http.MethodGet, "/v1/workspaces/ws_1/forwarding/test", "POST"},
	} {
		req, err := http.NewRequest(p.method, f.srv.URL+p.path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+f.owner)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s: %s", p.method, p.path, b)
		require.Contains(t, string(b), `"method_not_allowed"`)
		require.Contains(t, resp.Header.Get("Allow"), p.allow)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	}
}
