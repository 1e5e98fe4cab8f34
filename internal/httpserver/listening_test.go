package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
)

// A binary started on port 0 logs the port it bound in the line tests read
// with proctest.Output, and answers there.
func TestListeningLogsTheBoundAddress(t *testing.T) {
	var out proctest.Output
	log := slog.New(slog.NewJSONHandler(&out, nil)).With("service", "t")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, New(Options{Name: "t"}), proctest.AnyPort, Listening(log, "admin")) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	addr, err := out.Addr(ctx, "admin", time.Minute, nil)
	require.NoError(t, err, out.String())
	require.NotEqual(t, proctest.AnyPort, addr)
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, out.String(), `"msg":"`+ListeningMessage+`"`)
}
