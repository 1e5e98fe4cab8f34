package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/producers/ingest"
	"github.com/audittrail/audittrail/schemas/topics"
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

// TestComponentDefaultsMatchTheConfigurationTable checks that, with nothing
// set, the components use the defaults internal/config declares (and
// docs/configuration.md shows).
func TestComponentDefaultsMatchTheConfigurationTable(t *testing.T) {
	def := map[string]string{}
	for _, v := range config.Variables {
		def[v.Name] = v.Default
	}
	empty := func() *config.Env { return config.FromMap(map[string]string{}) }

	kc := kafkaconn.FromEnv(empty(), topics.Events, 6)
	require.Equal(t, def["AUDITTRAIL_KAFKA_BROKERS"], strings.Join(kc.Brokers, ","))
	require.Equal(t, def["AUDITTRAIL_CLICKHOUSE_ADDR"], chconn.FromEnv(empty()).Addr)
	ic := ingest.FromEnv(empty(), topics.Events)
	require.Equal(t, def["AUDITTRAIL_INGEST_ADDR"], ic.Addr)
	require.Empty(t, ic.Tokens, "no ingest token is accepted unless configured")
	require.Equal(t, def["AUDITTRAIL_CREDENTIALS_TOPIC"], ic.CredentialsTopic)
	require.NoError(t, ic.Validate(), "the gateway starts with producer credentials alone")
	ic.CredentialsTopic = ""
	require.ErrorContains(t, ic.Validate(), "AUDITTRAIL_INGEST_TOKENS", "the gateway refuses to start with neither credentials nor tokens")
	wc := writer.FromEnv(empty(), topics.Events)
	require.Equal(t, def["AUDITTRAIL_RETENTION_DAYS"], strconv.Itoa(wc.RetentionDays))
	require.Equal(t, def["AUDITTRAIL_WRITER_DEDUPE_WINDOW"], fmt.Sprintf("%.0fh", wc.DedupeWindow.Hours()))
	require.Equal(t, def["AUDITTRAIL_WRITER_DEDUPE_MAX_IDS"], strconv.Itoa(wc.DedupeMaxIDs))
	require.Equal(t, def["AUDITTRAIL_WRITER_BATCH_SIZE"], strconv.Itoa(wc.BatchSize))
	require.Equal(t, def["AUDITTRAIL_WRITER_BATCH_BYTES"], strconv.Itoa(wc.BatchBytes))
	require.Equal(t, def["AUDITTRAIL_CLICKHOUSE_COMPRESSION"], chconn.FromEnv(empty()).Compression)
}
