package deploy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kvtopic"
)

// TestHTTPServerServesProbes checks the endpoints the manifests probe on the
// shared HTTP server every binary starts (TestKubernetesProbesMatchTheBinaries
// checks that each one does): /healthz answers while the process runs,
// /readyz follows the dependency check.
func TestHTTPServerServesProbes(t *testing.T) {
	for _, tc := range []struct {
		ready     func(context.Context) error
		wantReady int
	}{
		{func(context.Context) error { return nil }, http.StatusOK},
		{func(context.Context) error { return errors.New("kafka: unreachable") }, http.StatusServiceUnavailable},
	} {
		e := httpserver.New(httpserver.Options{Name: "probe", Ready: tc.ready})
		for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": tc.wantReady} {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, want, rec.Code, path)
		}
	}
}

// settingsTopicConfigs are the configs internal/kvtopic creates the settings
// topic with, as strings.
func settingsTopicConfigs() map[string]string {
	out := map[string]string{}
	for k, v := range kvtopic.TopicConfigs() {
		out[k] = *v
	}
	return out
}
