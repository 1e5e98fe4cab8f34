package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/audittrail/audittrail/internal/config"
)

func TestClientAddressFollowsTrustedProxiesOnly(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"})
	require.NoError(t, err)
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		realIP  string
		want    string
	}{
		{"no proxies: peer, XFF ignored", nil, "203.0.113.9:4000", []string{"198.51.100.1"}, "", "203.0.113.9"},
		{"no proxies: peer, X-Real-IP ignored", nil, "203.0.113.9:4000", nil, "198.51.100.1", "203.0.113.9"},
		{"no proxies: loopback peer not trusted", nil, "127.0.0.1:4000", []string{"198.51.100.1"}, "", "127.0.0.1"},
		{"no proxies: private peer not trusted", nil, "192.168.1.5:4000", []string{"198.51.100.1"}, "198.51.100.2", "192.168.1.5"},
		{"untrusted peer", trusted, "203.0.113.9:4000", []string{"198.51.100.1"}, "198.51.100.2", "203.0.113.9"},
		{"loopback peer not in list", trusted, "127.0.0.1:4000", []string{"198.51.100.1"}, "", "127.0.0.1"},
		{"private peer not in list", trusted, "172.16.0.1:4000", []string{"198.51.100.1"}, "", "172.16.0.1"},
		{"trusted peer: XFF client", trusted, "10.1.2.3:4000", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"trusted single address", trusted, "192.0.2.7:4000", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"trusted peer: rightmost untrusted wins over spoofed left", trusted, "10.1.2.3:4000",
			[]string{"1.1.1.1, 198.51.100.1"}, "", "198.51.100.1"},
		{"trusted hops skipped", trusted, "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9", "192.0.2.7"}, "", "198.51.100.1"},
		{"loopback hop in XFF is not skipped", trusted, "10.1.2.3:4000", []string{"198.51.100.1, 127.0.0.1"}, "", "127.0.0.1"},
		{"garbage in XFF: peer", trusted, "10.1.2.3:4000", []string{"198.51.100.1, not-an-ip"}, "", "10.1.2.3"},
		{"trusted peer: X-Real-IP without XFF", trusted, "10.1.2.3:4000", nil, "198.51.100.2", "198.51.100.2"},
		{"trusted peer: bad X-Real-IP", trusted, "10.1.2.3:4000", nil, "nope", "10.1.2.3"},
		{"IPv6 trusted peer", trusted, "[fd00::1]:4000", []string{"2001:db8::5"}, "", "2001:db8::5"},
		{"IPv6 untrusted peer", trusted, "[2001:db8::9]:4000", []string{"2001:db8::5"}, "", "2001:db8::9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{Name: "t", TrustedProxies: tt.trusted})
			e.GET("/ip", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
			req := httptest.NewRequest(http.MethodGet, "/ip", nil)
			req.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				req.Header.Set("X-Real-IP", tt.realIP)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, tt.want, rec.Body.String())
		})
	}
}

func TestTrustedProxiesFromEnv(t *testing.T) {
	got, err := TrustedProxiesFromEnv(config.FromMap(map[string]string{config.TrustedProxies.Name: "10.0.0.0/8, 192.0.2.7 ,::ffff:198.51.100.0/120, 2001:db8::1"}))
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"), netip.MustParsePrefix("2001:db8::1/128")}, got)

	got, err = TrustedProxiesFromEnv(config.FromMap(map[string]string{}))
	require.NoError(t, err)
	require.Empty(t, got, "no proxy is trusted by default")

	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.1:80", "fe80::1%eth0"} {
		_, err := ParseTrustedProxies([]string{bad})
		require.ErrorContains(t, err, config.TrustedProxies.Name, bad)
		require.ErrorContains(t, err, bad)
	}
}

// errBody is the error envelope of an answer.
type errBody struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

func do(t *testing.T, e *echo.Echo, method, target string) (*httptest.ResponseRecorder, errBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	var b errBody
	if rec.Code >= 400 && method != http.MethodHead {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &b), rec.Body.String())
	}
	return rec, b
}

func TestEveryAnswerIsMarkedAndErrorsUseTheEnvelope(t *testing.T) {
	e := New(Options{Name: "t", Ready: func(context.Context) error {
		return errors.New(`dial tcp 10.0.0.5:9000: connect: connection refused (clickhouse: *proto.Exception at /srv/app/x.go)`)
	}})
	e.GET("/thing", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]int{"a": 1}) })
	e.PUT("/thing", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.GET("/boom", func(c echo.Context) error { return errors.New("pq: relation \"x\" at /home/me/src does not exist") })
	g := e.Group("/g", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	g.GET("/x", func(c echo.Context) error { return c.NoContent(http.StatusOK) })

	tests := []struct {
		name, method, target string
		status               int
		code, allow, field   string
	}{
		{"ok", http.MethodGet, "/thing", 200, "", "", ""},
		{"unknown path", http.MethodGet, "/nope", 404, "not_found", "", ""},
		{"wrong method", http.MethodDelete, "/thing", 405, "method_not_allowed", "OPTIONS, GET, PUT", ""},
		{"wrong method on healthz", http.MethodPost, "/healthz", 405, "method_not_allowed", "OPTIONS, GET", ""},
		{"internal error", http.MethodGet, "/boom", 500, "internal", "", ""},
		{"not ready", http.MethodGet, "/readyz", 503, "not_ready", "", ""},
		{"bad escape in value", http.MethodGet, "/thing?limit=%zz", 400, "invalid_parameter", "", "limit"},
		{"bad escape in name", http.MethodGet, "/thing?li%zzmit=1", 400, "invalid_parameter", "", "li%zzmit"},
		{"semicolon separator", http.MethodGet, "/thing?a=1;b=2", 400, "invalid_parameter", "", "a"},
		{"semicolon in second", http.MethodGet, "/thing?a=1&b=2;c", 400, "invalid_parameter", "", "b"},
		{"bad query on unknown path", http.MethodGet, "/nope?x=%zz", 400, "invalid_parameter", "", "x"},
		{"well-formed query", http.MethodGet, "/thing?a=1&&b=%3B&c", 200, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, b := do(t, e, tt.method, tt.target)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			if tt.status >= 400 {
				require.Equal(t, tt.code, b.Error.Code)
				require.Equal(t, tt.field, b.Error.Field)
				require.NotEmpty(t, b.Error.Message)
				require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
				for _, leak := range []string{"10.0.0.5", "/srv/", "/home/", "*proto", "pq:", "dial tcp", ".go"} {
					require.NotContains(t, rec.Body.String(), leak)
				}
			}
			require.Equal(t, tt.allow, rec.Header().Get("Allow"))
		})
	}
}

func TestDefaultLimitsAreSet(t *testing.T) {
	e := New(Options{Name: "t"})
	d := DefaultLimits()
	require.Equal(t, d.ReadHeaderTimeout, e.Server.ReadHeaderTimeout)
	require.Equal(t, d.ReadTimeout, e.Server.ReadTimeout)
	require.Equal(t, d.WriteTimeout, e.Server.WriteTimeout)
	require.Equal(t, d.IdleTimeout, e.Server.IdleTimeout)
	require.Equal(t, d.MaxHeaderBytes, e.Server.MaxHeaderBytes)
	for name, v := range map[string]time.Duration{"header": d.ReadHeaderTimeout, "read": d.ReadTimeout,
		"write": d.WriteTimeout, "idle": d.IdleTimeout} {
		require.Positive(t, v, name)
	}
	require.Positive(t, d.MaxHeaderBytes)

	e = New(Options{Name: "t", Limits: Limits{ReadTimeout: time.Second}})
	require.Equal(t, time.Second, e.Server.ReadTimeout)
	require.Equal(t, d.WriteTimeout, e.Server.WriteTimeout, "zero fields take the defaults")
}

// serve runs e with limits l on a real listener and returns its address.
func serve(t *testing.T, e *echo.Echo) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, e, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return <-addrc
}

// closedWithin reports whether the server closes conn within d.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
	_, err := io.Copy(io.Discard, conn)
	var netErr net.Error
	return !(errors.As(err, &netErr) && netErr.Timeout())
}

func TestServerDropsSlowClients(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // runs after the server and connections are closed
	l := Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond,
		WriteTimeout: 2 * time.Second, IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10}
	e := New(Options{Name: "t", Limits: l})
	e.POST("/body", func(c echo.Context) error {
		_, err := io.Copy(io.Discard, c.Request().Body)
		if err != nil {
			return BadRequest("", "could not read the body")
		}
		return c.NoContent(http.StatusNoContent)
	})
	addr := serve(t, e)
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("headers never finished", func(t *testing.T) {
		conn := dial()
		_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		require.True(t, closedWithin(t, conn, 5*time.Second))
	})
	t.Run("body never finished", func(t *testing.T) {
		conn := dial()
		_, err := io.WriteString(conn, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
		require.NoError(t, err)
		require.True(t, closedWithin(t, conn, 5*time.Second))
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dial()
		_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.True(t, closedWithin(t, conn, 5*time.Second))
	})
	t.Run("headers too large", func(t *testing.T) {
		conn := dial()
		_, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 16<<10))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
}

func TestStreamKeepsALongAnswerGoing(t *testing.T) {
	e := New(Options{Name: "t", Limits: Limits{WriteTimeout: time.Second}})
	stream := func(extend bool) echo.HandlerFunc {
		return func(c echo.Context) error {
			s, err := NewStream(c)
			require.NoError(t, err)
			c.Response().WriteHeader(http.StatusOK)
			deadline := time.Now().Add(5 * time.Second / 2)
			for i := 0; time.Now().Before(deadline); i++ {
				if extend {
					require.NoError(t, s.Progress())
				}
				if _, err := fmt.Fprintf(c.Response(), "line %d\n", i); err != nil {
					return nil
				}
				c.Response().Flush()
				<-time.After(20 * time.Millisecond) // a slow producer, as a store streaming rows
			}
			_, _ = io.WriteString(c.Response(), "end\n")
			return nil
		}
	}
	e.GET("/extended", stream(true))
	e.GET("/plain", stream(false))
	addr := serve(t, e)

	resp, err := http.Get("http://" + addr + "/extended")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), "end\n"), "the whole answer arrives, well past the write timeout")

	resp, err = http.Get("http://" + addr + "/plain")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.False(t, strings.HasSuffix(string(b), "end\n"), "without extension the write timeout cuts the answer")
}

// FuzzCheckQuery checks that a query string is refused exactly when Go
// cannot parse it, so nothing the handlers read was silently dropped.
func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "limit=%zz", "a=1;b=2", "q=%3B", "&&", "=x", "a%zz=1", "a=%", "a=%2", "é=ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, perr := url.ParseQuery(raw)
		err := CheckQuery(raw)
		require.Equal(t, perr == nil, err == nil, "ParseQuery: %v, CheckQuery: %v", perr, err)
		if err != nil {
			require.NotEmpty(t, err.Field)
			require.Equal(t, http.StatusBadRequest, err.Status)
		}
	})
}
