package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func fetch(t *testing.T, url, tok string, header ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func row(id, name string) migrations.Row {
	ts := time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)
	return migrations.Row{
		ID: id, WorkspaceID: "ws_1", Event: "Source Created", Category: "Sources", Timestamp: ts, TimestampNs: ts.UnixNano(),
		ActorType: "user", ActorID: "usr_1", ActorName: name, ActorEmail: "alice@example.com",
		ResourceType: "source", ResourceID: "src_1", ResourceName: name, Changes: `{"enabled":{"new":false,"old":true}}`,
		ContextIP: "203.0.113.9", ContextUserAgent: "curl/8", ContextRequestID: "req-1", Properties: "{}",
		ReceivedAt: ts.Add(time.Second), ReceivedAtNs: ts.Add(time.Second).UnixNano(),
	}
}

func TestExportCSV(t *testing.T) {
	tricky := []string{
		"Smith, Alice", `Alice "Al" Smith`, "line one\nline two\r\nthree", "Zoë Ümlaut 日本語 🚀",
		"=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain",
		"a\rb", "tab\tinside", "NUL\x00ESC\x1b[2J",
	}
	r := &fakeReader{}
	for i, name := range tricky {
		r.rows = append(r.rows, row("evt_"+string(rune('a'+i)), name))
	}
	rec := &fakeRecorder{}
	srv := newServerWith(t, r, rec)
	tok, err := auth.Mint(secret, "usr_9", "Owner Olga", "olga@example.com", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	q := url.Values{"event": {"Source Created"}, "q": {`actor:alice created:>2026-11-01`}, "since": {"2026-10-01T00:00:00Z"}}
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv?"+q.Encode(), tok, "X-Request-Id", "req-42", "User-Agent", "test-agent")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Regexp(t, `^attachment; filename="audit-trail-ws_1-\d{4}-\d{2}-\d{2}\.csv"$`, resp.Header.Get("Content-Disposition"))

	// The filters reached the store.
	require.Equal(t, []string{"Source Created"}, r.filter.Events)
	require.Equal(t, []search.Clause{{Field: search.Actor, Values: []string{"alice"}}}, r.filter.Search)
	require.Equal(t, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), r.filter.Since)

	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err, "RFC 4180")
	require.Equal(t, CSVColumns, records[0])
	require.Len(t, records, 1+len(tricky))
	col := map[string]int{}
	for i, c := range records[0] {
		col[c] = i
	}
	want := map[string]string{
		"=HYPERLINK(\"http://evil\")": "'=HYPERLINK(\"http://evil\")", "+1+2": "'+1+2", "-2+3": "'-2+3",
		"@SUM(A1)": "'@SUM(A1)", "\tTAB": "'\tTAB",
		// In CRLF mode encoding/csv would drop a lone CR: it becomes a
		// line break (read back as \n).
		"\rCR": "'\nCR", "a\rb": "a\nb",
		"tab\tinside": "tab\tinside",
		// Control characters stored before the contract refused them.
		"NUL\x00ESC\x1b[2J": "NUL\uFFFDESC\uFFFD[2J",
	}
	for i, name := range tricky {
		got := records[i+1]
		exp := name
		if w, ok := want[name]; ok {
			exp = w
		}
		if name == "line one\nline two\r\nthree" {
			exp = "line one\nline two\nthree" // encoding/csv reads a quoted \r\n as \n
		}
		require.Equal(t, exp, got[col["actor_name"]], "row %d", i)
		require.Equal(t, exp, got[col["resource_name"]], "row %d", i)
		require.Equal(t, "2026-11-20T10:00:00.123456789Z", got[col["timestamp"]])
		require.Equal(t, `{"enabled":{"new":false,"old":true}}`, got[col["changes"]])
		require.Equal(t, "", got[col["properties"]])
		require.Equal(t, "203.0.113.9", got[col["ip"]])
	}
	// Raw bytes: CRLF line breaks (RFC 4180), quotes doubled, fields with
	// commas quoted, UTF-8 as is.
	require.True(t, strings.HasPrefix(string(body), strings.Join(CSVColumns, ",")+"\r\n"), "header ends in CRLF")
	require.True(t, strings.HasSuffix(string(body), "\r\n"), "last record ends in CRLF")
	require.NotRegexp(t, `[^\r]\n`, string(body), "every line break is CRLF")
	require.Contains(t, string(body), "\"line one\r\nline two\r\nthree\"")
	require.Contains(t, string(body), `"Smith, Alice"`)
	require.Contains(t, string(body), `"Alice ""Al"" Smith"`)
	require.Contains(t, string(body), "Zoë Ümlaut 日本語 🚀")

	// The export is recorded, before anything was read, with the filters.
	require.Len(t, rec.events, 1)
	e := rec.events[0]
	require.Equal(t, ExportEvent, e.Event)
	require.Equal(t, "Audit Trail", e.Category)
	require.Equal(t, "ws_1", e.WorkspaceID)
	require.Equal(t, resp.Header.Get("X-Audit-Event-Id"), e.ID)
	require.Equal(t, "user", e.Actor.Type)
	require.Equal(t, "usr_9", e.Actor.ID)
	require.Equal(t, "Owner Olga", e.Actor.Name)
	require.Equal(t, "olga@example.com", e.Actor.Email)
	require.Equal(t, "audit_trail", e.Resource.Type)
	require.Equal(t, "req-42", e.Context.RequestID)
	require.Equal(t, "test-agent", e.Context.UserAgent)
	require.Equal(t, "127.0.0.1", e.Context.IP)
	var props struct {
		Format   string         `json:"format"`
		Filename string         `json:"filename"`
		Filters  map[string]any `json:"filters"`
	}
	require.NoError(t, json.Unmarshal(e.Properties, &props))
	require.Equal(t, "csv", props.Format)
	require.Equal(t, map[string]any{
		"event": []any{"Source Created"}, "q": "actor:alice created:>2026-11-01", "since": "2026-10-01T00:00:00Z",
	}, props.Filters)
}

func TestExportRefusedWhenNotRecorded(t *testing.T) {
	r := &fakeReader{rows: []migrations.Row{row("evt_a", "x")}}
	srv := newServerWith(t, r, &fakeRecorder{err: errors.New("kafka down")})
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, string(body), `"code":"export_not_recorded"`)
	require.Empty(t, resp.Header.Get("Content-Disposition"))
	require.False(t, r.exported, "nothing is read when the export cannot be recorded")
}

func TestExportEmpty(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, strings.Join(CSVColumns, ",")+"\r\n", string(body))
}

func TestExportFailureBeforeAnyRowIsAnError(t *testing.T) {
	srv := newServer(t, &fakeReader{exportErr: errors.New("clickhouse gone")})
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Disposition"))
	require.Contains(t, string(body), `"code":"internal"`)
}

func TestExportFailureMidStreamCutsTheConnection(t *testing.T) {
	r := &fakeReader{exportErr: errors.New("clickhouse gone")}
	for range 3 * flushRows {
		r.rows = append(r.rows, row("evt_a", "x"))
	}
	srv := newServer(t, r)
	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Error(t, err, "a broken transfer, not a complete-looking file")
	require.NotEmpty(t, body)
}

func TestExportRejectsPageParameters(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	for _, p := range []string{"limit=10", "cursor=abc"} {
		for _, path := range []string{"/audit-events.csv", "/audit-events/facets"} {
			status, body := get(t, srv, "/v1/workspaces/ws_1"+path+"?"+p, tok)
			require.Equal(t, 400, status, body)
		}
	}
}

func TestFacets(t *testing.T) {
	r := &fakeReader{facets: store.Facets{
		Events: []store.EventCount{{Name: "Source Created", Count: 3}},
		Actors: []store.ActorCount{{Type: "user", ID: "usr_1", Name: "Alice", Count: 3}},
	}}
	srv := newServer(t, r)
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events/facets?category=Sources&q=alice", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, 200, status, body)
	require.Equal(t, map[string]any{
		"events": []any{map[string]any{"name": "Source Created", "count": 3.0}},
		"actors": []any{map[string]any{"type": "user", "id": "usr_1", "name": "Alice", "count": 3.0}},
	}, body)
	require.Equal(t, "Sources", r.filter.Category)
	require.Equal(t, []search.Clause{{Field: search.Text, Values: []string{"alice"}}}, r.filter.Search)
}

func TestSearchNarrowsTime(t *testing.T) {
	r := &fakeReader{}
	srv := newServer(t, r)
	q := url.Values{"q": {"created:2026-11-01..2026-11-05"}, "since": {"2026-11-03T00:00:00Z"}, "until": {"2026-12-01T00:00:00Z"}}
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?"+q.Encode(), token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, 200, status, body)
	require.Equal(t, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), r.filter.Since)
	require.Equal(t, time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC), r.filter.Until)
}

func TestSearchSyntaxErrorSaysWhatIsWrong(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?q="+url.QueryEscape(`event:"Source Created`), token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, 400, status)
	e := body["error"].(map[string]any)
	require.Equal(t, "q", e["field"])
	require.Regexp(t, regexp.MustCompile(`^invalid search: unterminated quote.*\(at character 7\)$`), e["message"])
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "a": "a", "=1": "'=1", "+1": "'+1", "-1": "'-1", "@a": "'@a", "\t": "'\t", " =1": " =1", "'=1": "'=1",
		// Line breaks are kept (a lone CR, which encoding/csv would drop,
		// becomes a line feed); a leading one is neutralised too.
		"\r": "'\n", "\n=1": "'\n=1", "\r\n=1": "'\r\n=1", "a\rb": "a\nb", "a\r\nb": "a\r\nb", "a\tb\nc": "a\tb\nc",
		// Other control characters and invalid UTF-8 (rows stored before
		// the contract refused them) become U+FFFD.
		"a\x00b": "a\uFFFDb", "\x1b[31mred": "\uFFFD[31mred", "a\x7f": "a\uFFFD", "a\u0085b": "a\uFFFDb", "a\xffb": "a\uFFFDb",
		"Zoë \u00a0日本": "Zoë \u00a0日本",
	} {
		require.Equal(t, want, cell(in), "%q", in)
	}
}

// failingReader fails every read with err.
type failingReader struct {
	fakeReader
	err error
}

func (f *failingReader) List(context.Context, store.Filter, *store.Cursor, int) (store.Page, error) {
	return store.Page{}, f.err
}

func (f *failingReader) Facets(context.Context, store.Filter) (store.Facets, error) {
	return store.Facets{}, f.err
}

func TestStoreFailuresAnswer503WhenUnreachable(t *testing.T) {
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	for _, tt := range []struct {
		err    error
		status int
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503},
		{fmt.Errorf("query processing: failed to read first block packet: %w", syscall.ECONNRESET), 503},
		{io.ErrUnexpectedEOF, 503},
		{errors.New("code: 60, message: table does not exist"), 500},
	} {
		r := &failingReader{err: tt.err}
		r.exportErr = tt.err
		srv := newServer(t, r)
		for _, path := range []string{"/audit-events", "/audit-events/facets", "/audit-events.csv"} {
			status, body := get(t, srv, "/v1/workspaces/ws_1"+path, tok)
			require.Equal(t, tt.status, status, "%s %v: %v", path, tt.err, body)
		}
	}
}

// A filter value with a control character is refused with a 400 naming
// the parameter before anything is recorded or read (it used to reach the
// recorder, which refused the export's record: a 503).
func TestExportRefusesControlCharactersInFilters(t *testing.T) {
	r := &fakeReader{rows: []migrations.Row{row("evt_a", "x")}}
	rec := &fakeRecorder{}
	srv := newServerWith(t, r, rec)
	for _, q := range []string{"actor_id=usr%1E1", "event=a%1Fb", "resource_id=%C2%9B", "q=a%00"} {
		resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv?"+q, token(t, map[string]string{"ws_1": "owner"}, time.Hour))
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
		require.Contains(t, string(body), `"field":"`+strings.SplitN(q, "=", 2)[0]+`"`, q)
	}
	require.Empty(t, rec.events, "nothing is recorded")
	require.False(t, r.exported, "nothing is read")
}
