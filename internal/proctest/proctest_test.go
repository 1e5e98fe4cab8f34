package proctest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
)

func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		a := proctest.FreeAddr()
		require.NotEqual(t, "127.0.0.1:0", a)
		require.False(t, seen[a], "%s handed out twice", a)
		seen[a] = true
	}
}

func TestMetricSumsEveryLabelSet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/metrics", r.URL.Path)
		_, _ = w.Write([]byte(`# HELP lag the lag
# TYPE lag gauge
lag{partition="0"} 3
lag{partition="1"} 4.5
lag_total 100
up 1
`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		want    float64
		samples int
	}{{"lag", 7.5, 2}, {"up", 1, 1}, {"lag_total", 100, 1}, {"missing", 0, 0}} {
		v, n, err := proctest.Metric(ctx, addr, tc.name)
		require.NoError(t, err)
		require.Equal(t, tc.samples, n, tc.name)
		require.Equal(t, tc.want, v, tc.name)
	}
	srv.Close()
	_, _, err := proctest.Metric(ctx, addr, "up")
	require.Error(t, err, "no answer")
}

func TestWaitReadyWaitsFor200(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	require.NoError(t, proctest.WaitReady(context.Background(), addr, 10*time.Second, nil))
	require.EqualValues(t, 3, calls.Load())

	exited := make(chan struct{})
	close(exited)
	err := proctest.WaitReady(context.Background(), proctest.RefusedAddr(t), 10*time.Second, exited)
	require.ErrorContains(t, err, "exited")
	err = proctest.WaitReady(context.Background(), proctest.RefusedAddr(t), 300*time.Millisecond, nil)
	require.ErrorContains(t, err, "not ready within")
}
