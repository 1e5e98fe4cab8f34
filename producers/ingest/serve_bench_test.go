package ingest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
)

// discard is a publisher that acknowledges every record at once.
type discard struct{}

func (discard) Publish(context.Context, []*kgo.Record) error { return nil }

// BenchmarkServe measures the gateway's work per request of a batch of 100
// load-generator events (those of scripts/bench-producers): reading,
// splitting, decoding, validating, encoding the records and answering,
// through echo, without the network and Kafka.
func BenchmarkServe(b *testing.B) {
	g, err := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.2, Seed: 42}, nil)
	require.NoError(b, err)
	body := []byte(`{"batch":[`)
	for i := range 100 {
		if i > 0 {
			body = append(body, ',')
		}
		e := g.Next()
		body, err = event.Encode(body, &e)
		require.NoError(b, err)
	}
	body = append(body, `]}`...)
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: "audit"}, discard{},
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), time.Now)
	require.NoError(b, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
