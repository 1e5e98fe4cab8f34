package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

const token = "test-ingest-token-0123456789"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fakePublisher struct {
	mu   sync.Mutex
	recs []*kgo.Record
	err  error
}

func (p *fakePublisher) Publish(_ context.Context, recs []*kgo.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.recs = append(p.recs, recs...)
	return nil
}

func newServer(t *testing.T, pub Publisher) *httptest.Server {
	t.Helper()
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: "audit"}, pub,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), func() time.Time { return now })
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

func ev(ws, name string, extra string) string {
	return fmt.Sprintf(`{"workspace_id": %q, "event": %q, "timestamp": "2026-11-25T11:00:00Z",
		"actor": {"type": "user", "id": "u1", "email": "a@example.com"}%s}`, ws, name, extra)
}

func TestSingleEventIsPublishedWithKeyHeadersAndDerivedFields(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	status, body := post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", `, "id": "evt-1"`))
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, float64(1), body["accepted"])
	require.Equal(t, []any{"evt-1"}, body["ids"])

	require.Len(t, pub.recs, 1)
	r := pub.recs[0]
	require.Equal(t, "audit", r.Topic)
	require.Equal(t, "ws_1", string(r.Key))
	require.Equal(t, []kgo.RecordHeader{
		{Key: topics.HeaderEvent, Value: []byte("Source Created")},
		{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
	}, r.Headers)
	e, err := event.Decode(r.Value)
	require.NoError(t, err)
	require.Equal(t, "evt-1", e.ID)
	require.Equal(t, "Sources", e.Category)
	require.Equal(t, "source", e.Resource.Type)
	require.Equal(t, now, e.ReceivedAt)
}

func TestBatchAssignsIDsWhenAbsent(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	body := fmt.Sprintf(`{"batch": [%s, %s]}`, ev("ws_1", "Source Created", ""), ev("ws_2", "Warehouses Disabled", ""))
	status, out := post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusAccepted, status, out)
	ids := out["ids"].([]any)
	require.Len(t, ids, 2)
	require.NotEqual(t, ids[0], ids[1])
	require.Len(t, pub.recs, 2)
	require.Equal(t, "ws_2", string(pub.recs[1].Key))
}

func TestBatchIsAllOrNothing(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	body := fmt.Sprintf(`{"batch": [%s, %s, %s]}`,
		ev("ws_1", "Source Created", ""),
		ev("ws_1", "Source Exploded", ""),
		ev("", "Source Created", ""))
	status, out := post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusBadRequest, status)
	require.Empty(t, pub.recs, "nothing is published when any event is invalid")

	errObj := out["error"].(map[string]any)
	require.Equal(t, "invalid_event", errObj["code"])
	require.Equal(t, "batch[1].event", errObj["field"])
	details := errObj["details"].([]any)
	require.Len(t, details, 2, "one entry per invalid event")
	require.Equal(t, float64(1), details[0].(map[string]any)["index"])
	require.Equal(t, "event", details[0].(map[string]any)["field"])
	require.Equal(t, float64(2), details[1].(map[string]any)["index"])
	require.Equal(t, "workspace_id", details[1].(map[string]any)["field"])
}

func TestBatchReusingAnIDWithADifferentTimestampIsRejected(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	later := strings.Replace(ev("ws_1", "Source Created", `, "id": "evt-1"`), "11:00:00Z", "11:00:05Z", 1)
	body := fmt.Sprintf(`{"batch": [%s, %s, %s]}`,
		ev("ws_1", "Source Created", `, "id": "evt-1"`),
		ev("ws_2", "Source Created", `, "id": "evt-1"`), // another workspace: a different event
		later)
	status, out := post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Empty(t, pub.recs)
	errObj := out["error"].(map[string]any)
	require.Equal(t, "batch[2].id", errObj["field"])
	details := errObj["details"].([]any)
	require.Len(t, details, 1)
	require.Equal(t, float64(2), details[0].(map[string]any)["index"])

	// The same event twice (a retry inside one batch) is accepted: it
	// collapses into one stored event.
	body = fmt.Sprintf(`{"batch": [%s, %s]}`,
		ev("ws_1", "Source Created", `, "id": "evt-1"`), ev("ws_1", "Source Created", `, "id": "evt-1"`))
	status, out = post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusAccepted, status, out)
}

func TestRejections(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	big := ev("ws_1", "Source Created", fmt.Sprintf(`, "properties": {"x": %q}`, strings.Repeat("a", MaxEvent)))
	many := make([]string, MaxBatch+1)
	for i := range many {
		many[i] = ev("ws_1", "Source Created", "")
	}
	tests := []struct {
		name, auth, body string
		status           int
		code, field      string
	}{
		{"no token", "", ev("ws_1", "Source Created", ""), 401, "unauthorized", ""},
		{"unknown token", "Bearer nope-nope-nope-nope", ev("ws_1", "Source Created", ""), 401, "unauthorized", ""},
		{"basic auth", "Basic " + token, ev("ws_1", "Source Created", ""), 401, "unauthorized", ""},
		{"not json", "Bearer " + token, "hello", 400, "invalid_parameter", ""},
		{"array body", "Bearer " + token, "[]", 400, "invalid_parameter", ""},
		{"broken json", "Bearer " + token, `{"event": `, 400, "invalid_event", ""},
		{"empty batch", "Bearer " + token, `{"batch": []}`, 400, "invalid_parameter", "batch"},
		{"batch extra key", "Bearer " + token, `{"batch": [], "x": 1}`, 400, "invalid_parameter", "batch"},
		{"batch of non-objects", "Bearer " + token, `{"batch": [1]}`, 400, "invalid_event", "batch[0]"},
		{"event too large", "Bearer " + token, big, 413, "too_large", ""},
		{"batch too long", "Bearer " + token, `{"batch": [` + strings.Join(many, ",") + `]}`, 413, "too_large", "batch"},
		{"body too large", "Bearer " + token, `{"batch": ["` + strings.Repeat("a", MaxBody) + `"]}`, 413, "too_large", ""},
		{"future timestamp", "Bearer " + token, strings.Replace(ev("ws_1", "Source Created", ""), "2026-11-25T11", "2026-11-27T11", 1), 400, "invalid_event", "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := post(t, srv, tt.auth, tt.body)
			require.Equal(t, tt.status, status, out)
			errObj := out["error"].(map[string]any)
			require.Equal(t, tt.code, errObj["code"], out)
			if tt.field != "" {
				require.Equal(t, tt.field, errObj["field"], out)
			}
		})
	}
	require.Empty(t, pub.recs)
}

func TestBrokerFailureIsReportedNotDropped(t *testing.T) {
	pub := &fakePublisher{err: errors.New("broker down")}
	srv := newServer(t, pub)
	status, out := post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", `, "id": "evt-retry"`))
	require.Equal(t, http.StatusServiceUnavailable, status, out)

	pub.mu.Lock()
	pub.err = nil
	pub.mu.Unlock()
	status, out = post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", `, "id": "evt-retry"`))
	require.Equal(t, http.StatusAccepted, status, out)
	require.Len(t, pub.recs, 1)
}

// blockingPublisher holds every Publish until release is closed.
type blockingPublisher struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	active  int
	peak    int
}

func (p *blockingPublisher) Publish(ctx context.Context, _ []*kgo.Record) error {
	p.mu.Lock()
	p.active++
	p.peak = max(p.peak, p.active)
	p.mu.Unlock()
	p.entered <- struct{}{}
	<-p.release
	p.mu.Lock()
	p.active--
	p.mu.Unlock()
	return nil
}

func TestConcurrentRequestsAreBounded(t *testing.T) {
	pub := &blockingPublisher{entered: make(chan struct{}, 10), release: make(chan struct{})}
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: "audit", MaxConcurrent: 2, AdmitWait: 20 * time.Millisecond},
		pub, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), func() time.Time { return now })
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()

	statuses := make(chan int, 2)
	for range 2 {
		go func() {
			status, _ := post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", ""))
			statuses <- status
		}()
	}
	<-pub.entered
	<-pub.entered
	status, out := post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", ""))
	require.Equal(t, http.StatusServiceUnavailable, status, out)
	require.Equal(t, "busy", out["error"].(map[string]any)["code"])

	close(pub.release)
	require.Equal(t, http.StatusAccepted, <-statuses)
	require.Equal(t, http.StatusAccepted, <-statuses)
	require.Equal(t, 2, pub.peak)
	status, _ = post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", ""))
	require.Equal(t, http.StatusAccepted, status, "slots are returned")
}

// FuzzIngestBody checks that no body makes the gateway answer 5xx or
// publish anything it did not validate.
func FuzzIngestBody(f *testing.F) {
	f.Add(ev("ws_1", "Source Created", ""))
	f.Add(`{"batch": [` + ev("ws_1", "Source Created", "") + `]}`)
	f.Add(`{"batch": [{}, 1, "x", null]}`)
	f.Add(`{"batch": null}`)
	f.Add("{\"event\": \"\xff\"}")
	pub := &fakePublisher{}
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: "audit"}, pub,
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil, func() time.Time { return now })
	require.NoError(f, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, rec.Body.String())
		if rec.Code == http.StatusAccepted {
			pub.mu.Lock()
			defer pub.mu.Unlock()
			for _, r := range pub.recs {
				ev, err := event.Decode(r.Value)
				require.NoError(t, err)
				require.NoError(t, event.Policy{Now: func() time.Time { return now }}.Validate(&ev))
			}
			pub.recs = nil
		}
	})
}

func TestContentTypeAndBearerScheme(t *testing.T) {
	srv := newServer(t, &fakePublisher{})
	tests := []struct {
		name, contentType, auth string
		status                  int
	}{
		{"json", "application/json", "Bearer " + token, http.StatusAccepted},
		{"json with charset", "application/json; charset=utf-8", "Bearer " + token, http.StatusAccepted},
		{"json in capitals", "Application/JSON", "Bearer " + token, http.StatusAccepted},
		{"lower-case scheme", "application/json", "bearer " + token, http.StatusAccepted},
		{"upper-case scheme", "application/json", "BEARER " + token, http.StatusAccepted},
		{"no content type", "", "Bearer " + token, http.StatusUnsupportedMediaType},
		{"text", "text/plain", "Bearer " + token, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", "Bearer " + token, http.StatusUnsupportedMediaType},
		{"json suffix type", "application/problem+json", "Bearer " + token, http.StatusUnsupportedMediaType},
		{"malformed", "application/json; charset", "Bearer " + token, http.StatusUnsupportedMediaType},
		{"basic scheme", "application/json", "Basic " + token, http.StatusUnauthorized},
		{"no space", "application/json", "Bearer" + token, http.StatusUnauthorized},
		{"unauthenticated wrong type", "text/plain", "Bearer nope", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(ev("ws_1", "Source Created", "")))
			require.NoError(t, err)
			req.Header.Set("Authorization", tt.auth)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var out map[string]map[string]any
			b, _ := io.ReadAll(resp.Body)
			require.Equal(t, tt.status, resp.StatusCode, string(b))
			if tt.status == http.StatusUnsupportedMediaType {
				require.NoError(t, json.Unmarshal(b, &out), string(b))
				require.Equal(t, "unsupported_media_type", out["error"]["code"])
				require.Equal(t, "Content-Type", out["error"]["field"])
			}
		})
	}
}
