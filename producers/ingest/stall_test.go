package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/httpserver/httpservertest"
)

// stallBound is how long after a burst of stalled requests every slot they
// took is free again: a request gets a slot within AdmitWait of arriving or
// gives up, holds it at most BodyTimeout, and the server's ReadTimeout ends
// any request read earlier.
func stallBound(cfg Config, l httpserver.Limits) time.Duration {
	return min(cfg.AdmitWait+cfg.BodyTimeout, l.ReadTimeout)
}

// recoveryBound is how long until a valid request is accepted again after
// such a burst: the slots are free after stallBound, and a valid request
// that arrived while they were held waits at most one more AdmitWait (then
// is answered busy and retried).
func recoveryBound(cfg Config, l httpserver.Limits) time.Duration {
	return stallBound(cfg, l) + cfg.AdmitWait
}

func TestDefaultLimitsBoundAStalledBody(t *testing.T) {
	cfg := Config{AdmitWait: DefaultAdmitWait, BodyTimeout: DefaultBodyTimeout}
	l := httpserver.DefaultLimits()
	require.LessOrEqual(t, recoveryBound(cfg, l), 30*time.Second,
		"with the documented defaults a valid request is accepted again within 30 s of a stall")
	require.Less(t, DefaultBodyTimeout, l.ReadTimeout, "the gateway frees a slot before the server gives up on the request")
	require.Less(t, l.ReadTimeout, l.WriteTimeout, "the answer to a request read at the last moment still goes out")
	require.Greater(t, l.WriteTimeout, DefaultBodyTimeout+publishWait, "a slow body and a slow Kafka acknowledgement still get their answer out")
}

// raiseOpenFiles makes room for n more sockets on both ends.
func raiseOpenFiles(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur >= n+256 {
		return
	}
	if lim.Max < n+256 {
		t.Skipf("the open-file limit (%d) leaves no room for %d sockets", lim.Max, n)
	}
	old := lim
	lim.Cur = n + 256
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// serveGateway runs a gateway on a real listener with limits l and returns
// its address.
func serveGateway(t *testing.T, cfg Config, l httpserver.Limits) (*Gateway, string) {
	t.Helper()
	cfg.Addr, cfg.Tokens, cfg.Topic = "x", []string{token}, "audit"
	gw, err := New(cfg, &fakePublisher{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func() time.Time { return now })
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest", Limits: l})
	gw.Register(e)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(ctx, e, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return gw, <-addrc
}

// stall opens a connection and sends a request whose body never finishes.
func stall(t *testing.T, addr, headers string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: ingest\r\n%sContent-Length: 4096\r\n\r\n{\"batch\": [", headers)
	require.NoError(t, err)
	return conn
}

// postValid sends one valid event on a new connection and returns the status.
func postValid(addr string) int {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(ev("ws_1", "Source Created", "")))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// closedByServer reads what the server answers on conn and reports whether
// the server then closed it (rather than the read timing out).
func closedByServer(conn net.Conn, within time.Duration) (status int, closed bool) {
	_ = conn.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		status = resp.StatusCode
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, err := io.Copy(io.Discard, br)
	var netErr net.Error
	return status, err == nil || !(errors.As(err, &netErr) && netErr.Timeout())
}

func TestThousandStalledBodiesDoNotStarveTheGateway(t *testing.T) {
	const stalled = 1000
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // runs after the server and sockets are closed
	raiseOpenFiles(t, 2*stalled+64)
	cfg := Config{MaxConcurrent: 16, AdmitWait: 300 * time.Millisecond, BodyTimeout: time.Second}
	l := httpserver.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 5 * time.Second,
		IdleTimeout: 5 * time.Second}
	gw, addr := serveGateway(t, cfg, l)

	start := time.Now()
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = stall(t, addr, "Authorization: Bearer "+token+"\r\nContent-Type: application/json\r\n")
	}
	require.Eventually(t, func() bool { return gw.SlotsInUse() == cfg.MaxConcurrent }, 10*time.Second, 5*time.Millisecond,
		"the stalled requests hold every slot")

	require.Eventually(t, func() bool { return postValid(addr) == http.StatusAccepted }, 30*time.Second, 20*time.Millisecond,
		"a valid request is accepted again")
	took := time.Since(start)
	require.Less(t, took, 30*time.Second)
	// Opening 1,000 sockets on a busy machine takes time of its own.
	require.Less(t, took, recoveryBound(cfg, l)+5*time.Second, "recovery follows the configured limits")

	require.Eventually(t, func() bool { return gw.SlotsInUse() == 0 }, stallBound(cfg, l)+5*time.Second, 5*time.Millisecond,
		"every stalled slot is freed")
	answered := map[int]int{}
	for i, conn := range conns {
		status, closed := closedByServer(conn, l.ReadTimeout+5*time.Second)
		require.True(t, closed, "stalled connection %d is closed by the server", i)
		answered[status]++
	}
	require.Less(t, time.Since(start), stallBound(cfg, l)+5*time.Second,
		"every stalled connection is answered and closed as its slot is freed or refused, not at the read timeout")
	require.Equal(t, stalled, answered[http.StatusRequestTimeout]+answered[http.StatusServiceUnavailable]+answered[0], answered)
	require.GreaterOrEqual(t, answered[http.StatusRequestTimeout], cfg.MaxConcurrent, "slot holders get 408: %v", answered)
}

func TestRefusedRequestsTakeNoSlot(t *testing.T) {
	cfg := Config{MaxConcurrent: 4, AdmitWait: 5 * time.Second, BodyTimeout: 30 * time.Second}
	gw, addr := serveGateway(t, cfg, httpserver.Limits{})
	tests := []struct {
		name, headers string
		status        int
	}{
		{"no token", "Content-Type: application/json\r\n", http.StatusUnauthorized},
		{"unknown token", "Authorization: Bearer not-the-token-0123456789\r\nContent-Type: application/json\r\n", http.StatusUnauthorized},
		{"no content type", "Authorization: Bearer " + token + "\r\n", http.StatusUnsupportedMediaType},
		{"form content type", "Authorization: Bearer " + token + "\r\nContent-Type: application/x-www-form-urlencoded\r\n", http.StatusUnsupportedMediaType},
		{"text content type", "Authorization: Bearer " + token + "\r\nContent-Type: text/plain\r\n", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 * cfg.MaxConcurrent {
				conn := stall(t, addr, tt.headers)
				status, closed := closedByServer(conn, 5*time.Second)
				require.Equal(t, tt.status, status, "answered before the body arrives")
				require.True(t, closed, "the connection is closed at once, not after the %s read timeout",
					httpserver.DefaultLimits().ReadTimeout)
			}
			require.Zero(t, gw.SlotsInUse())
			start := time.Now()
			require.Equal(t, http.StatusAccepted, postValid(addr))
			require.Less(t, time.Since(start), cfg.AdmitWait, "a valid request finds a slot at once")
		})
	}
}

// A body over MaxBody is answered 413 with the envelope, never with a
// reset, also for a client that writes its whole body before it reads the
// answer; nothing is published.
func TestOversizedBodyGets413NeverAReset(t *testing.T) {
	gw, addr := serveGateway(t, Config{}, httpserver.DefaultLimits())
	for _, size := range []int{MaxBody + 1, 3 * MaxBody, MaxBody + 24<<20} {
		resp, err := httpservertest.SendWhole(t, addr, http.MethodPost, "/v1/events", token, []byte(`{"batch": [], "x": "`), size)
		require.NoError(t, err, "size %d: the client reads an answer, not a reset", size)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "size %d: %s", size, b)
		require.Contains(t, string(b), `"too_large"`)
	}
	pub := gw.pub.(*fakePublisher)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	require.Empty(t, pub.recs)
}
