// Package httpservertest has test helpers for the product's HTTP servers.
package httpservertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"testing"

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
