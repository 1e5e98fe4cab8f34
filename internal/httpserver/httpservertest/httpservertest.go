// Package httpservertest has test helpers for the product's HTTP servers.
package httpservertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SendWhole sends a request with a body of size bytes over a new TCP
// connection to addr and writes the whole body before it reads the answer,
// as many simple clients do; body is repeated or cut to size. It fails t
// when the server closes the connection before the body is written (the
// client would see a reset instead of the answer), and returns the answer.
func SendWhole(t *testing.T, addr, method, path, token string, body []byte, size int) (*http.Response, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, path, token, size)
	payload := append(append([]byte(head), body...), bytes.Repeat([]byte("a"), max(0, size-len(body)))...)[:len(head)+size]
	done := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		done <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, <-done, "the server reads the whole body before it closes")
	return resp, err
}

// ServeWithin serves req with h in process, with Content-Type
// application/json, the bearer token tok (when not empty) and header added,
// and fails tb when h does not answer within limit (a stall).
func ServeWithin(tb testing.TB, h http.Handler, req *http.Request, tok string, header http.Header, limit time.Duration) *httptest.ResponseRecorder {
	tb.Helper()
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rr := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rr, req)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		tb.Fatalf("%s %s: no answer within %s", req.Method, req.RequestURI, limit)
	}
	return rr
}
