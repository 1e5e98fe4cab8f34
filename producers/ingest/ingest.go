// Package ingest is the HTTP ingest gateway (POST /v1/events).
//
// Services in any language POST audit events to /v1/events with a producer
// credential (or a legacy ingest token). The gateway validates them against
// the contract and catalogue, sets id (when absent), category and
// received_at, publishes them to Kafka keyed by workspace id, and answers
// 202 only after Kafka acknowledged every event (acks=all, idempotent
// producer).
//
// A request is one event or {"batch": [...]} of up to MaxBatch events. A
// batch is all-or-nothing: if any event is invalid the answer is 400 with
// one entry per invalid event and nothing is published; if any event is
// outside the credential's scopes the answer is 403 and nothing is
// published; if the events exceed a workspace's or the credential's rate
// limit the answer is 429 with Retry-After and nothing is published.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Limits of one request.
const (
	MaxBatch    = 1000
	MaxBody     = 4 << 20
	MaxEvent    = 32 << 10
	publishWait = 30 * time.Second
)

// Publisher delivers records and returns once every one is acknowledged, or
// the first error.
type Publisher interface {
	Publish(ctx context.Context, recs []*kgo.Record) error
}

// Gateway serves the ingest endpoint.
type Gateway struct {
	cfg Config
	pub Publisher
	now func() time.Time
	log *slog.Logger
	// slots holds one token per request in progress (MaxConcurrent).
	slots   chan struct{}
	legacy  []legacyToken
	limiter *Limiter

	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
	busy     prometheus.GaugeFunc
	limited  *prometheus.CounterVec
}

// New returns a gateway publishing through pub.
func New(cfg Config, pub Publisher, log *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	cfg.Policy.Now = now
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.AdmitWait <= 0 {
		cfg.AdmitWait = DefaultAdmitWait
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	g := &Gateway{cfg: cfg, pub: pub, now: now, log: log, slots: make(chan struct{}, cfg.MaxConcurrent), legacy: newLegacyTokens(cfg.Tokens),
		limiter: NewLimiter(cfg.Limits),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_ingest_events_total", Help: "Events received, by result (accepted, invalid, forbidden, rate_limited, failed)."}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_ingest_requests_total", Help: "Ingest requests by status code."}, []string{"code"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_ingest_rate_limited_total", Help: "Requests refused 429 by a rate limit, by the limit that refused (workspace, credential)."}, []string{"limit"}),
	}
	g.busy = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "audittrail_ingest_slots_in_use", Help: "Requests holding one of the MaxConcurrent slots."},
		func() float64 { return float64(g.SlotsInUse()) })
	if reg != nil {
		reg.MustRegister(g.events, g.requests, g.busy, g.limited)
	}
	if len(g.legacy) > 0 {
		ids := make([]string, len(g.legacy))
		for i, t := range g.legacy {
			ids[i] = t.id
		}
		log.Warn(config.IngestTokens.Name+" is deprecated: each token may write every event into every workspace; "+
			"create scoped producer credentials (producers/cmd/credentials) and remove the tokens", "credential_ids", ids)
	}
	return g, nil
}

// SlotsInUse is the number of requests being read, validated or published.
func (g *Gateway) SlotsInUse() int { return len(g.slots) }

// Register mounts POST /v1/events on e.
func (g *Gateway) Register(e *echo.Echo) {
	e.POST("/v1/events", g.handle)
}

// InvalidEvent is one entry of a 400 answer.
type InvalidEvent struct {
	Index   int                `json:"index"`
	Field   string             `json:"field"`
	Message string             `json:"message"`
	Errors  []event.FieldError `json:"errors,omitempty"`

	tooLarge bool
}

// Accepted is the 202 answer.
type Accepted struct {
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
}

func (g *Gateway) handle(c echo.Context) error {
	status, err := g.serve(c)
	g.requests.WithLabelValues(fmt.Sprint(status)).Inc()
	return err
}

func (g *Gateway) serve(c echo.Context) (int, error) {
	// Everything checked before a slot is taken: a request that will be
	// refused never holds one.
	principal, ok := g.authenticate(c.Request().Header.Get(echo.HeaderAuthorization), g.now())
	if !ok {
		refuse(c)
		return http.StatusUnauthorized, &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "missing, unknown, revoked or expired credential: send Authorization: Bearer <credential id>.<secret>"}
	}
	// credentialID names the sender of every event of the request.
	credentialID := principal.CredentialID
	if !isJSON(c.Request().Header.Get(echo.HeaderContentType)) {
		refuse(c)
		return http.StatusUnsupportedMediaType, &httpserver.Error{Status: http.StatusUnsupportedMediaType,
			Code: "unsupported_media_type", Field: "Content-Type", Message: "send the events as Content-Type: application/json"}
	}
	if !g.admit(c.Request().Context()) {
		c.Response().Header().Set("Retry-After", "1")
		refuse(c)
		return http.StatusServiceUnavailable, &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "busy",
			Message: "the gateway is at its limit of concurrent requests; retry shortly (event ids make retries safe)"}
	}
	defer func() { <-g.slots }()
	body, status, err := g.readBody(c)
	if err != nil {
		return status, err
	}
	raws, batch, apiErr := splitBody(body)
	if apiErr != nil {
		return apiErr.Status, apiErr
	}
	events, invalid := g.decodeAll(raws, credentialID)
	if len(invalid) > 0 {
		g.events.WithLabelValues("invalid").Add(float64(len(raws)))
		apiErr := invalidError(invalid, len(raws), batch)
		return apiErr.Status, apiErr
	}
	if apiErr := outOfScope(principal, events, batch); apiErr != nil {
		g.events.WithLabelValues("forbidden").Add(float64(len(raws)))
		return apiErr.Status, apiErr
	}
	if apiErr := g.overLimit(c, credentialID, events, batch); apiErr != nil {
		g.events.WithLabelValues("rate_limited").Add(float64(len(raws)))
		return apiErr.Status, apiErr
	}

	recs, ids, err := g.records(events)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), publishWait)
	defer cancel()
	if err := g.pub.Publish(ctx, recs); err != nil {
		g.events.WithLabelValues("failed").Add(float64(len(recs)))
		g.log.Error("publish failed", "events", len(recs), "credential_id", credentialID, "err", err)
		return http.StatusServiceUnavailable, &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "events were not acknowledged by Kafka; retry the request (event ids make retries safe)"}
	}
	g.events.WithLabelValues("accepted").Add(float64(len(recs)))
	return http.StatusAccepted, c.JSON(http.StatusAccepted, Accepted{Accepted: len(recs), IDs: ids})
}

// schemaVersion is the value of every record's schema version header
// (shared: records are only read).
var schemaVersion = []byte(event.SchemaVersion)

// records encodes the request's events as records, allocated together,
// and returns them with the events' ids.
func (g *Gateway) records(events []event.Event) ([]*kgo.Record, []string, error) {
	recs := make([]*kgo.Record, len(events))
	ids := make([]string, len(events))
	all := make([]kgo.Record, len(events))
	headers := make([]kgo.RecordHeader, 2*len(events))
	for i := range events {
		value, err := event.Marshal(&events[i])
		if err != nil {
			return nil, nil, fmt.Errorf("encode event %d: %w", i, err)
		}
		h := headers[2*i : 2*i+2 : 2*i+2]
		h[0] = kgo.RecordHeader{Key: topics.HeaderEvent, Value: []byte(events[i].Event)}
		h[1] = kgo.RecordHeader{Key: topics.HeaderSchemaVersion, Value: schemaVersion}
		all[i] = kgo.Record{Topic: g.cfg.Topic, Key: []byte(events[i].WorkspaceID), Value: value, Headers: h}
		recs[i] = &all[i]
		ids[i] = events[i].ID
	}
	return recs, ids, nil
}

// readBody reads the body within BodyTimeout and MaxBody; on failure it
// returns the answer's status and error (413 after the rest of an
// oversized body is read, so the client reads the answer, not a reset; 408
// when the body stalls).
func (g *Gateway) readBody(c echo.Context) ([]byte, int, error) {
	if err := httpserver.SetReadDeadline(c, g.cfg.BodyTimeout); err != nil {
		return nil, http.StatusInternalServerError, err
	}
	body, err := httpserver.ReadBody(c, MaxBody)
	if err != nil {
		var apiErr *httpserver.Error
		if errors.As(err, &apiErr) {
			return nil, apiErr.Status, apiErr
		}
		return nil, http.StatusBadRequest, err
	}
	return body, 0, nil
}

// refuse closes c's connection after the answer without reading the rest
// of the body (which may never come): the server would otherwise read on
// until its read timeout before closing.
func refuse(c echo.Context) {
	c.Response().Header().Set(echo.HeaderConnection, "close")
	_ = httpserver.SetReadDeadline(c, 0)
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == echo.MIMEApplicationJSON
}

// admit takes a request slot, waiting at most AdmitWait.
func (g *Gateway) admit(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(g.cfg.AdmitWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// splitBody returns the raw events of a request: the body itself, or the
// elements of {"batch": [...]}.
func splitBody(body []byte) ([]json.RawMessage, bool, *httpserver.Error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false, httpserver.BadRequest("", `the body must be one event object or {"batch": [events]}`)
	}
	// A body the strict decoder takes holds "batch" and nothing else; one
	// it refuses is a batch body with more in it if the lenient decoder
	// finds a "batch" array, and else one event.
	var strict struct {
		Batch *[]json.RawMessage `json:"batch"`
	}
	// The events are read from the body itself (DontCopyRawMessage): it
	// lives as long as the request, and what outlives the request is copied
	// (records, rate-limit keys).
	rest, err := json.Parse(body, &strict, json.DisallowUnknownFields|json.DontMatchCaseInsensitiveStructFields|json.DontCopyRawMessage)
	if err != nil {
		var probe struct {
			Batch *[]json.RawMessage `json:"batch"`
		}
		if _, err := json.Parse(body, &probe, json.DontMatchCaseInsensitiveStructFields); err != nil || probe.Batch == nil {
			// Not a batch (or not JSON): treat it as one event and let the
			// event decoder report what is wrong with it.
			return []json.RawMessage{body}, false, nil
		}
		return nil, true, httpserver.BadRequest("batch", `a batch body holds only "batch": an array of event objects`)
	}
	if strict.Batch == nil {
		return []json.RawMessage{body}, false, nil
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, true, httpserver.BadRequest("", "unexpected data after the batch object")
	}
	if members(body) > 1 {
		return nil, true, httpserver.BadRequest("batch", `duplicate key: a batch body holds "batch" once`)
	}
	switch n := len(*strict.Batch); {
	case n == 0:
		return nil, true, httpserver.BadRequest("batch", "the batch is empty")
	case n > MaxBatch:
		return nil, true, &httpserver.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "batch",
			Message: fmt.Sprintf("a batch holds at most %d events, got %d", MaxBatch, n)}
	}
	return *strict.Batch, true, nil
}

// members counts the members of the object a batch body holds, which the
// strict decoder took (so it is valid JSON, and its only key is "batch"):
// the decoder keeps the last "batch", and a second one must not hide the
// first. It counts the colons outside strings at the object's own level.
// Each event is checked for repeated keys on its own (event.Decode).
func members(body []byte) int {
	n, depth := 0, 0
	for i := bytes.IndexByte(body, '{') + 1; i < len(body); i++ {
		switch body[i] {
		case '"':
			i = stringEnd(body, i+1)
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return n
			}
			depth--
		case ':':
			if depth == 0 {
				n++
			}
		}
	}
	return n
}

// stringEnd returns the index of the quote closing the JSON string whose
// text starts at body[i].
func stringEnd(body []byte, i int) int {
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			return i
		case '\\':
			i++ // the escaped byte
		}
	}
	return i
}

// decodeAll decodes and validates every event of a request and stamps
// each accepted one with the request's credential (see stampSender).
func (g *Gateway) decodeAll(raws []json.RawMessage, credentialID string) ([]event.Event, []InvalidEvent) {
	now := g.now().UTC()
	events := make([]event.Event, len(raws))
	var invalid []InvalidEvent
	for i, raw := range raws {
		if len(raw) > MaxEvent {
			invalid = append(invalid, InvalidEvent{Index: i, tooLarge: true,
				Message: fmt.Sprintf("event is %d bytes; at most %d bytes per event", len(raw), MaxEvent)})
			continue
		}
		e, err := event.Decode(raw)
		if err == nil {
			err = stampSender(&e, credentialID)
		}
		if err == nil {
			err = g.cfg.Policy.Validate(&e)
		}
		if err != nil {
			invalid = append(invalid, invalidEntry(i, err))
			continue
		}
		if e.ID == "" {
			e.ID = event.NewID()
		}
		e.ReceivedAt = now
		events[i] = e
	}
	return events, append(invalid, conflictingIDs(events, invalid)...)
}

// conflictingIDs reports events of one batch that reuse another event's id
// in the same workspace with a different timestamp. Storage keeps one event
// per (workspace, timestamp, id), so such a pair would become two visible
// events; the same event repeated (same timestamp) collapses and passes.
func conflictingIDs(events []event.Event, invalid []InvalidEvent) []InvalidEvent {
	if len(events) < 2 {
		return nil
	}
	skip := make(map[int]bool, len(invalid))
	for _, inv := range invalid {
		skip[inv.Index] = true
	}
	type key struct{ ws, id string }
	first := make(map[key]int, len(events))
	var out []InvalidEvent
	for i := range events {
		if skip[i] {
			continue
		}
		k := key{events[i].WorkspaceID, events[i].ID}
		j, seen := first[k]
		if !seen {
			first[k] = i
			continue
		}
		if !events[j].Timestamp.Equal(events[i].Timestamp) {
			out = append(out, InvalidEvent{Index: i, Field: "id", Message: fmt.Sprintf(
				"id %q is used by batch[%d] in the same workspace with a different timestamp; an id names one event", events[i].ID, j)})
		}
	}
	return out
}

func invalidEntry(i int, err error) InvalidEvent {
	var ve *event.ValidationError
	if errors.As(err, &ve) && len(ve.Fields) > 0 {
		return InvalidEvent{Index: i, Field: ve.Fields[0].Field, Message: ve.Fields[0].Message, Errors: ve.Fields}
	}
	return InvalidEvent{Index: i, Message: err.Error()}
}

// invalidError is 413 when any event is over the size limit, else 400.
func invalidError(invalid []InvalidEvent, total int, batch bool) *httpserver.Error {
	status, code := http.StatusBadRequest, "invalid_event"
	for _, inv := range invalid {
		if inv.tooLarge {
			status, code = http.StatusRequestEntityTooLarge, "too_large"
			break
		}
	}
	slices.SortFunc(invalid, func(a, b InvalidEvent) int { return a.Index - b.Index })
	first := invalid[0]
	field := first.Field
	msg := first.Message
	if batch {
		field = fmt.Sprintf("batch[%d].%s", first.Index, first.Field)
		msg = fmt.Sprintf("%d of %d events are invalid; nothing was published. First: %s", len(invalid), total, first.Message)
	}
	return &httpserver.Error{Status: status, Code: code, Field: strings.TrimSuffix(field, "."),
		Message: msg, Details: invalid}
}
