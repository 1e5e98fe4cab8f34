package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/stacktest"
)

func TestIntegration202OnlyAfterKafkaAcknowledgedEveryEvent(t *testing.T) {
	topic := stacktest.Topics(t, 6, "ingest-ack")[0]
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, ProducerOptions()...)...)
	require.NoError(t, err)
	defer cl.Close()
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: topic}, NewKafkaPublisher(cl),
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest", Ready: cl.Ping})
	gw.Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "ready when Kafka answers")

	adm := kadm.NewClient(cl)
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	total := int64(0)
	for round := range 5 {
		batch := make([]string, 100)
		for i := range batch {
			batch[i] = strings.Replace(ev(fmt.Sprintf("ws_%d", i%7), "Source Modified", fmt.Sprintf(`, "id": "r%d-%03d"`, round, i)),
				"2026-11-25T11:00:00Z", ts, 1)
		}
		status, out := post(t, srv, "Bearer "+token, `{"batch": [`+strings.Join(batch, ",")+`]}`)
		require.Equal(t, http.StatusAccepted, status, out)
		total += 100
		// No waiting: the 202 means every event is already below the high
		// watermark, which advances only once all in-sync replicas have it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		offs, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		require.NoError(t, err)
		var sum int64
		offs.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		require.Equal(t, total, sum, "round %d", round)
	}
}
