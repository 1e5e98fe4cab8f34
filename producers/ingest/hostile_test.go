package ingest

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/httpserver/httpservertest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// The hostile-input suite drives the gateway in process with a fake
// publisher. For every request it asserts: no 5xx; an answer within
// stallLimit; nothing published unless the answer is 202; and every
// published record is a valid event, keyed by its own workspace, which is
// the workspace_id its producer named for that event (never one taken from
// another event of the batch, from a nested object or from a key spelled
// differently).

// stallLimit bounds one in-process request; the server's timeouts are
// longer, so a handler this slow would already be a stall.
const stallLimit = 5 * time.Second

type hostileGateway struct {
	e   *echo.Echo
	pub *fakePublisher
}

func newHostileGateway(tb testing.TB) *hostileGateway {
	g := &hostileGateway{pub: &fakePublisher{}}
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, Topic: "audit"}, g.pub,
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil, func() time.Time { return now })
	require.NoError(tb, err)
	g.e = httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(g.e)
	return g
}

// post sends body and checks the suite's invariants; it returns the status.
func (g *hostileGateway) post(tb testing.TB, header http.Header, body string) int {
	tb.Helper()
	g.pub.mu.Lock()
	g.pub.recs = nil
	g.pub.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	rr := httpservertest.ServeWithin(tb, g.e, req, token, header, stallLimit)
	require.Less(tb, rr.Code, 500, "%.300q: %s", body, rr.Body.String())
	g.pub.mu.Lock()
	recs := g.pub.recs
	g.pub.recs = nil
	g.pub.mu.Unlock()
	if rr.Code != http.StatusAccepted {
		require.Empty(tb, recs, "answered %d: nothing is published", rr.Code)
		return rr.Code
	}
	var acc Accepted
	require.NoError(tb, json.Unmarshal(rr.Body.Bytes(), &acc))
	require.Len(tb, recs, acc.Accepted)
	require.Len(tb, acc.IDs, acc.Accepted)
	named := namedWorkspaces(tb, []byte(body))
	require.Len(tb, named, len(recs), "one record per event sent")
	for i, r := range recs {
		ev, err := event.Decode(r.Value)
		require.NoError(tb, err)
		require.NoError(tb, event.Policy{Now: func() time.Time { return now }}.Validate(&ev))
		require.Equal(tb, ev.WorkspaceID, string(r.Key), "keyed by its own workspace")
		require.Contains(tb, named[i], ev.WorkspaceID, "event %d is stored in a workspace its producer named for it", i)
		require.Equal(tb, acc.IDs[i], ev.ID)
		for _, h := range r.Headers {
			if h.Key == topics.HeaderEvent {
				require.Equal(tb, ev.Event, string(h.Value))
			}
		}
	}
	return rr.Code
}

// namedWorkspaces returns, per event of the request (the body, or each
// element of its "batch"), the strings given for its top-level
// "workspace_id" key, spelled exactly so.
func namedWorkspaces(tb testing.TB, body []byte) [][]string {
	tb.Helper()
	var probe struct {
		Batch []stdjson.RawMessage `json:"batch"`
	}
	elems := []stdjson.RawMessage{body}
	if stdjson.Unmarshal(body, &probe) == nil && probe.Batch != nil {
		elems = probe.Batch
	}
	out := make([][]string, len(elems))
	for i, el := range elems {
		dec := stdjson.NewDecoder(bytes.NewReader(el))
		if tok, err := dec.Token(); err != nil || tok != stdjson.Delim('{') {
			continue
		}
		for dec.More() {
			k, err := dec.Token()
			require.NoError(tb, err)
			var v stdjson.RawMessage
			require.NoError(tb, dec.Decode(&v))
			var s string
			if k == "workspace_id" && stdjson.Unmarshal(v, &s) == nil {
				out[i] = append(out[i], s)
			}
		}
	}
	return out
}

func hev(ws string) string { return ev(ws, "Source Created", "") }

func TestIngestHostileInputs(t *testing.T) {
	g := newHostileGateway(t)
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) }
	cases := []struct {
		name   string
		header http.Header
		body   string
		want   int // 0: any status below 500
	}{
		{"valid", nil, hev("ws_1"), 202},
		{"no token", http.Header{"Authorization": nil}, hev("ws_1"), 401},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, hev("ws_1"), 401},
		{"token prefix", http.Header{"Authorization": {"Bearer " + token[:len(token)-1]}}, hev("ws_1"), 401},
		{"token with a suffix", http.Header{"Authorization": {"Bearer " + token + "x"}}, hev("ws_1"), 401},
		{"basic scheme", http.Header{"Authorization": {"Basic " + token}}, hev("ws_1"), 401},
		{"two authorization headers", http.Header{"Authorization": {"Bearer nope-nope-nope-nope", "Bearer " + token}}, hev("ws_1"), 0},
		{"lower-case scheme", http.Header{"Authorization": {"bearer " + token}}, hev("ws_1"), 0},
		{"null", nil, `null`, 400},
		{"array", nil, `[` + hev("ws_1") + `]`, 400},
		{"empty", nil, ``, 400},
		{"string", nil, `"x"`, 400},
		{"two events without a batch", nil, hev("ws_1") + hev("ws_2"), 400},
		{"batch of one per workspace", nil, `{"batch": [` + hev("ws_1") + `,` + hev("ws_2") + `,` + hev("ws_3") + `]}`, 202},
		{"batch with a workspace of its own", nil, `{"workspace_id": "ws_2", "batch": [` + hev("ws_1") + `]}`, 400},
		{"batch inside a batch", nil, `{"batch": [{"batch": [` + hev("ws_1") + `]}]}`, 400},
		{"batch of arrays", nil, `{"batch": [[` + hev("ws_1") + `]]}`, 400},
		{"batch of nulls", nil, `{"batch": [null]}`, 400},
		{"batch not an array", nil, `{"batch": ` + hev("ws_1") + `}`, 400},
		{"batch key twice", nil, `{"batch": [` + hev("ws_1") + `], "batch": [` + hev("ws_2") + `]}`, 0},
		{"workspace twice", nil, strings.Replace(hev("ws_1"), `{`, `{"workspace_id": "ws_2", `, 1), 0},
		{"workspace in another spelling", nil, strings.Replace(hev("ws_1"), `"workspace_id": "ws_1"`, `"WORKSPACE_ID": "ws_2"`, 1), 0},
		{"workspace in both spellings", nil, strings.Replace(hev("ws_1"), `{`, `{"Workspace_Id": "ws_2", `, 1), 0},
		{"workspace inside properties", nil, ev("", "Source Created", `, "properties": {"workspace_id": "ws_2"}`), 400},
		{"workspace as a number", nil, strings.Replace(hev("ws_1"), `"ws_1"`, `12`, 1), 400},
		{"workspace null", nil, strings.Replace(hev("ws_1"), `"ws_1"`, `null`, 1), 400},
		{"workspace with a NUL", nil, hev("ws_1\x00"), 400},
		{"workspace with an escaped NUL", nil, strings.Replace(hev("ws_1"), `"ws_1"`, `"ws_1\u0000"`, 1), 400},
		{"workspace with a newline", nil, strings.Replace(hev("ws_1"), `"ws_1"`, `"ws_1\n"`, 1), 400},
		{"workspace with a path", nil, hev("ws_1/../ws_2"), 400},
		{"workspace with a slash", nil, hev("ws_1/alerts"), 400},
		{"workspace with spaces", nil, hev(" ws_1 "), 400},
		{"workspace in Cyrillic", nil, hev("ws_\u0430"), 400},
		{"workspace too long", nil, hev(strings.Repeat("w", 129)), 400},
		{"workspace empty", nil, hev(""), 400},
		{"event name with controls", nil, ev("ws_1", "Source\u001bCreated", ""), 400},
		{"deep properties", nil, ev("ws_1", "Source Created", `, "properties": `+deep(10_000)), 0},
		{"deeper than the decoder", nil, ev("ws_1", "Source Created", `, "properties": `+deep(200_000)), 0},
		{"many keys", nil, ev("ws_1", "Source Created", `, "properties": {`+func() string {
			var b strings.Builder
			for i := range 3000 {
				fmt.Fprintf(&b, `"k%d": 1,`, i)
			}
			return strings.TrimSuffix(b.String(), ",")
		}()+`}`), 0},
		{"too many events", nil, `{"batch": [` + strings.TrimSuffix(strings.Repeat(hev("ws_1")+",", MaxBatch+1), ",") + `]}`, 413},
		{"event too large", nil, ev("ws_1", "Source Created", `, "properties": {"a": "`+strings.Repeat("x", MaxEvent)+`"}`), 413},
		{"body too large", nil, `{"batch": [` + strings.Repeat(" ", MaxBody) + `]}`, 413},
		{"invalid UTF-8", nil, ev("ws_1", "Source Created", ", \"properties\": {\"a\": \"\xff\xfe\"}"), 0},
		{"huge number", nil, ev("ws_1", "Source Created", `, "properties": {"a": 1e999999999}`), 0},
		{"timestamp far away", nil, strings.Replace(hev("ws_1"), "2026-11-25T11:00:00Z", "9999-12-31T23:59:59Z", 1), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := g.post(t, c.header, c.body)
			if c.want != 0 {
				require.Equal(t, c.want, code)
			}
		})
	}
}

// FuzzIngestWorkspaces sends arbitrary bodies and asserts the suite's
// invariants: in particular, no body gets an event published in a
// workspace its producer did not name for it.
func FuzzIngestWorkspaces(f *testing.F) {
	f.Add(hev("ws_1"))
	f.Add(`{"batch": [` + hev("ws_1") + `,` + hev("ws_2") + `]}`)
	f.Add(strings.Replace(hev("ws_1"), `{`, `{"workspace_id": "ws_2", `, 1))
	f.Add(strings.Replace(hev("ws_1"), `"workspace_id": "ws_1"`, `"Workspace_ID": "ws_2"`, 1))
	f.Add(`{"batch": [` + hev("ws_1") + `], "batch": [` + hev("ws_2") + `]}`)
	f.Add(ev("ws_1", "Source Created", `, "properties": {"workspace_id": "ws_2", "batch": []}`))
	g := newHostileGateway(f)
	f.Fuzz(func(t *testing.T, body string) {
		g.post(t, nil, body)
	})
}
