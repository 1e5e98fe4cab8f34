package settings

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// refusedURLs spell every refused range in the ways a resolver or a
// browser may read them.
var refusedURLs = []string{
	"http://127.0.0.1:8123/?query_id=x", "http://127.0.0.1.:8123/", "http://2130706433/", "http://0177.0.0.1/",
	"http://0x7f.0.0.1/", "http://0x7f000001/", "http://127.1/", "http://0x7f.1/", "http://0177.0x0.1/",
	"http://localhost:8123/", "http://LOCALHOST./", "http://metadata.localhost/",
	"http://0.0.0.0/", "http://0/", "http://169.254.169.254/latest/meta-data/", "http://2852039166/",
	"http://10.0.0.1/", "http://012.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://0xc0a80101/",
	"http://100.64.0.1/", "http://224.0.0.1/", "http://255.255.255.255/", "http://240.0.0.1/",
	"http://[::1]:8123/", "http://[::]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
	"http://[::ffff:a9fe:a9fe]/", "http://[fe80::1%25eth0]/", "http://[fc00::1]/", "http://[fd00::1]/",
	"http://[ff02::1]/", "http://[::127.0.0.1]/", "http://[64:ff9b::127.0.0.1]/", "http://[64:ff9b:1::1]/",
	"http://[2002:7f00:1::]/", "http://[2001:0:7f00:1::]/",
}

func TestPutRefusesNonPublicLiteralTargets(t *testing.T) {
	f := newFixture(t)
	for _, u := range refusedURLs {
		t.Run(u, func(t *testing.T) {
			code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
				`{"enabled": true, "target": {"url": "`+u+`", "write_key": "wk_secret_abcd"}}`)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, "target.url", errField(body))
			require.Contains(t, errMessage(body), "refused by policy")

			code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner,
				`{"enabled": true, "webhook_url": "`+u+`", "events": ["Source Created"]}`)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, "webhook_url", errField(body))
			require.Contains(t, errMessage(body), "refused by policy")
		})
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	require.Empty(t, f.rec.events, "nothing was changed")
}

func TestPutRefusesFragmentsBadPortsAndSpaces(t *testing.T) {
	f := newFixture(t)
	for _, u := range []string{"https://api.example.com/#x", "https://api.example.com:70000/", "https://api.example.com:0/", "https://api.example.com/a b"} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
			`{"enabled": true, "target": {"url": "`+u+`", "write_key": "wk_secret_abcd"}}`)
		require.Equal(t, http.StatusBadRequest, code, u)
		require.Equal(t, "target.url", errField(body), u)
	}
}

func TestPutAcceptsOnlyTheAllowListedIPAndPort(t *testing.T) {
	f := newFixture(t, allow("127.0.0.1:18555", "[fd00::7]:443"))
	for _, u := range []string{"http://127.0.0.1:18555", "http://127.0.0.1:18555/in?token=a", "http://2130706433:18555/", "https://[fd00::7]/"} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
			`{"enabled": true, "target": {"url": "`+u+`", "write_key": "wk_secret_abcd"}}`)
		require.Equal(t, http.StatusOK, code, "%s: %v", u, body)
	}
	for _, u := range []string{"http://127.0.0.1:18556", "http://127.0.0.1/", "http://localhost:18555/", "http://[fd00::7]:8443/"} {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
			`{"enabled": true, "target": {"url": "`+u+`", "write_key": "wk_secret_abcd"}}`)
		require.Equal(t, http.StatusBadRequest, code, u)
		require.Equal(t, "target.url", errField(body))
	}
}

// storeTarget saves a target straight into the store, as settings saved
// before literal addresses were checked (or a name that resolves to a
// refused address) would be.
func storeTarget(t *testing.T, f *fixture, url string) {
	raw, err := json.Marshal(trackingplan.Forwarding{Target: trackingplan.Target{URL: url, WriteKey: "wk_secret_abcd"}})
	require.NoError(t, err)
	rec, err := json.Marshal(trackingplan.Record{WorkspaceID: "ws_1", Kind: trackingplan.KindForwarding, UpdatedAt: time.Now(), Settings: raw})
	require.NoError(t, err)
	require.NoError(t, f.store.Put(context.Background(), trackingplan.Key("ws_1", trackingplan.KindForwarding), rec))
}

// counting is a local server that counts connections and requests.
type counting struct {
	srv                *httptest.Server
	accepted, requests atomic.Int64
}

func newCounting(t *testing.T, tlsServer bool, h http.HandlerFunc) *counting {
	c := &counting{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h(w, r)
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.accepted.Add(1)
		}
	}
	if tlsServer {
		c.srv.StartTLS()
	} else {
		c.srv.Start()
	}
	t.Cleanup(c.srv.Close)
	return c
}

func (c *counting) addr() string { return c.srv.Listener.Addr().String() }

func TestTestCallReportsOnlyAStatusOrAFixedReason(t *testing.T) {
	const secretBody = `{"secret": "clickhouse says hello"}`
	answer := newCounting(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(secretBody))
	})
	var resent atomic.Value
	second := newCounting(t, false, func(w http.ResponseWriter, r *http.Request) {
		resent.Store(r.Header.Get("Authorization"))
	})
	redirect := newCounting(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, second.srv.URL+"/v1/batch", http.StatusTemporaryRedirect)
	})
	tlsSrv := newCounting(t, true, func(w http.ResponseWriter, r *http.Request) {})
	refused := newCounting(t, false, func(w http.ResponseWriter, r *http.Request) {})
	closedAddr := proctest.RefusedAddr(t)
	_, refusedPort, _ := net.SplitHostPort(refused.addr())

	f := newFixture(t, allow(answer.addr(), second.addr(), redirect.addr(), tlsSrv.addr(), closedAddr))
	for _, c := range []struct {
		name, url string
		status    float64
		message   string
	}{
		{"body never echoed", answer.srv.URL, 400, "the target answered HTTP 400"},
		{"redirect", redirect.srv.URL, 307, ReasonRedirect},
		{"TLS", tlsSrv.srv.URL, 0, ReasonTLS},
		{"unreachable", "http://" + closedAddr, 0, ReasonUnreachable},
		// Names skip the literal check; the dialer refuses what they resolve to.
		{"refused name", "http://localhost:" + refusedPort, 0, ReasonRefused},
		{"refused stored literal", "http://127.0.0.1:" + refusedPort + "/?query_id=x", 0, ReasonRefused},
		{"refused mapped", "http://[::ffff:127.0.0.1]:" + refusedPort, 0, ReasonRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			storeTarget(t, f, c.url)
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, "")
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, false, body["ok"])
			require.Equal(t, c.status, body["status"])
			require.Equal(t, c.message, body["message"])
			require.NotContains(t, mustJSON(body), "clickhouse says hello")
		})
	}
	require.EqualValues(t, 1, redirect.requests.Load())
	require.Zero(t, second.accepted.Load(), "the redirect was not followed")
	require.Nil(t, resent.Load(), "the write key was not sent to the redirect target")
	require.Zero(t, refused.accepted.Load(), "no connection reached a refused address")
}

func TestFailureReasons(t *testing.T) {
	live := context.Background()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{live, &net.OpError{Op: "dial", Err: egress.ErrRefused}, ReasonRefused},
		{live, context.DeadlineExceeded, ReasonTimeout},
		{live, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ReasonUnreachable},
		{live, &net.DNSError{Err: "no such host", Name: "x.invalid"}, ReasonUnreachable},
	} {
		require.Equal(t, c.want, failureReason(c.ctx, c.err), "%v", c.err)
	}
	done, cancel := context.WithCancel(live)
	cancel()
	require.Equal(t, ReasonTimeout, failureReason(done, errors.New("anything")))
}

func errMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return strings.TrimSpace(s)
}
