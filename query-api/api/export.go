package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// CSVColumns is the header row of a CSV export.
var CSVColumns = []string{
	"id", "timestamp", "event", "category",
	"actor_type", "actor_id", "actor_name", "actor_email",
	"resource_type", "resource_id", "resource_name",
	"ip", "changes", "user_agent", "request_id", "properties", "received_at",
	"sender_credential_id", "sender_producer",
}

// ExportEvent is the event name each CSV export is recorded under.
const ExportEvent = "Audit Trail Exported"

// Flushing: rows go out at least every flushRows rows or flushEvery.
const (
	flushRows  = 1000
	flushEvery = 200 * time.Millisecond
)

// exportCSV streams the matching events as CSV, after recording the export
// in the trail. Recording comes first and is required: when it fails the
// answer is 503 and nothing is exported, so no export escapes the trail.
func (a *API) exportCSV(c echo.Context) error {
	ws := c.Param("workspace_id")
	f, err := parseFilter(ws, c.QueryParams())
	if err != nil {
		return err
	}
	now := a.o.Now().UTC()
	filename := fmt.Sprintf("audit-trail-%s-%s.csv", strings.ReplaceAll(ws, ":", "_"), now.Format(time.DateOnly))
	rec, err := a.recordExport(c, ws, f, filename, now)
	if err != nil {
		return err
	}

	resp := c.Response()
	h := resp.Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s"`, filename))
	h.Set("X-Audit-Event-Id", rec.ID)

	w := csv.NewWriter(resp)
	// RFC 4180: records, and line breaks inside quoted values, end in CRLF.
	w.UseCRLF = true
	_ = w.Write(CSVColumns)
	rows, err := a.streamRows(c, f, w)
	a.rows.Add(float64(rows))
	if _, serr := httpserver.NewStream(c); err == nil {
		err = serr // the end of the file, or the error answer, gets a full write timeout
	}
	if err == nil {
		w.Flush()
		err = w.Error()
	}
	if err == nil {
		a.exports.WithLabelValues("ok").Inc()
		resp.Flush()
		return nil
	}
	a.exports.WithLabelValues("failed").Inc()
	if !resp.Committed {
		// Nothing left yet: answer with an error instead of a file.
		h.Del(echo.HeaderContentDisposition)
		h.Del("X-Audit-Event-Id")
		return a.storeError("export events", err)
	}
	// Part of the file is out: cut the connection, so the client sees a
	// broken transfer rather than a complete-looking, truncated file.
	a.o.Log.Error("export stopped while streaming", "workspace_id", ws, "rows", rows, "err", err)
	panic(http.ErrAbortHandler)
}

// recordExport records the export in the trail before anything is
// exported; when that fails the answer is a 503 and nothing is exported.
func (a *API) recordExport(c echo.Context, ws string, f Filters, filename string, now time.Time) (event.Event, error) {
	rec := exportRecord(c, auth.FromContext(c), ws, f, filename, now)
	rctx, cancel := context.WithTimeout(c.Request().Context(), a.o.RecordTimeout)
	err := a.o.Recorder.Emit(rctx, rec)
	cancel()
	if err != nil {
		a.exports.WithLabelValues("not_recorded").Inc()
		a.o.Log.Error("export refused: recording it failed", "workspace_id", ws, "actor_id", rec.Actor.ID, "err", err)
		return rec, &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "export_not_recorded",
			Message: "the export could not be recorded in the audit trail, so nothing was exported; retry later"}
	}
	return rec, nil
}

// streamRows writes the matching rows to w, flushing every flushRows rows
// or flushEvery, and returns how many it wrote. The server's write timeout
// would cut a long export: progress keeps the deadline ahead, so only a
// client that stops reading (or a store that stops answering) is cut.
func (a *API) streamRows(c echo.Context, f Filters, w *csv.Writer) (int, error) {
	stream, err := httpserver.NewStream(c)
	if err != nil {
		return 0, err
	}
	resp := c.Response()
	cells := make([]string, len(CSVColumns))
	var tsBuf, recvBuf []byte
	rows := 0
	lastFlush := time.Now()
	err = a.o.Events.Export(c.Request().Context(), f.Filter, func(r *migrations.Row) error {
		if err := stream.Progress(); err != nil {
			return err
		}
		tsBuf = r.Timestamp.AppendFormat(tsBuf[:0], time.RFC3339Nano)
		recvBuf = r.ReceivedAt.AppendFormat(recvBuf[:0], time.RFC3339Nano)
		rowCells(cells, r, tsBuf, recvBuf)
		if err := w.Write(cells); err != nil {
			return err
		}
		rows++
		if rows%flushRows == 0 || time.Since(lastFlush) >= flushEvery {
			w.Flush()
			if err := w.Error(); err != nil {
				return err
			}
			resp.Flush()
			lastFlush = time.Now()
		}
		return nil
	})
	return rows, err
}

// rowCells fills cells (in CSVColumns order) from a row, with its times
// already formatted.
func rowCells(cells []string, r *migrations.Row, ts, received []byte) {
	cells[0] = cell(r.ID)
	cells[1] = string(ts)
	cells[2] = cell(r.Event)
	cells[3] = cell(r.Category)
	cells[4] = cell(r.ActorType)
	cells[5] = cell(r.ActorID)
	cells[6] = cell(r.ActorName)
	cells[7] = cell(r.ActorEmail)
	cells[8] = cell(r.ResourceType)
	cells[9] = cell(r.ResourceID)
	cells[10] = cell(r.ResourceName)
	cells[11] = cell(r.ContextIP)
	cells[12] = cell(jsonCell(r.Changes))
	cells[13] = cell(r.ContextUserAgent)
	cells[14] = cell(r.ContextRequestID)
	cells[15] = cell(jsonCell(r.Properties))
	cells[16] = string(received)
	cells[17] = cell(r.SenderCredentialID)
	cells[18] = cell(r.SenderProducer)
}

// cell neutralises a value a spreadsheet would run as a formula (starting
// with = + - @, a tab or a line break) by prefixing a single quote, and
// keeps text readable and safe whatever was stored (see readable).
func cell(s string) string {
	if s == "" {
		return s
	}
	s = readable(s)
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n':
		return "'" + s
	}
	return s
}

// readable returns s with invalid UTF-8 and control characters other than
// tab and line breaks (C0, DEL, C1: rows written before the event
// contract refused them, or by another tool) replaced by U+FFFD, and each
// carriage return not followed by a line feed turned into a line feed:
// encoding/csv in CRLF mode would drop it and join the lines. Text without
// such characters is returned as it is.
func readable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == '\r' && !strings.HasPrefix(s[i+1:], "\n"):
			b.WriteByte('\n')
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r) // invalid UTF-8 is RuneError already
		}
	}
	return b.String()
}

// jsonCell is a JSON object column as a cell: empty for an empty object.
func jsonCell(s string) string {
	if s == "{}" {
		return ""
	}
	return s
}

// exportRecord is the "Audit Trail Exported" event of an export: who
// (the token's subject, as a user), which workspace, from where, and the
// filters used.
func exportRecord(c echo.Context, claims *auth.Claims, ws string, f Filters, filename string, now time.Time) event.Event {
	format := "csv"
	if strings.HasSuffix(filename, ".ndjson") {
		format = "ndjson"
	}
	props, _ := json.Marshal(map[string]any{"format": format, "filename": filename, "filters": f.Used})
	e := event.Event{
		ID:          event.NewID(),
		WorkspaceID: ws,
		Event:       ExportEvent,
		Timestamp:   now,
		Resource:    event.Resource{Type: "audit_trail", ID: ws, Name: "Audit trail"},
		Properties:  props,
		Context: event.Context{
			UserAgent: text(c.Request().UserAgent(), event.MaxTextLen),
			RequestID: text(c.Request().Header.Get(echo.HeaderXRequestID), event.MaxNameLen),
		},
	}
	if ip, err := netip.ParseAddr(c.RealIP()); err == nil {
		e.Context.IP = ip.String()
	}
	if claims != nil {
		e.Actor = event.Actor{Type: event.ActorUser, ID: text(claims.Subject, event.MaxNameLen), Name: text(claims.Name, event.MaxNameLen)}
		if email := text(claims.Email, event.MaxEmailLen); strings.Contains(email, "@") && len(email) == len(claims.Email) {
			e.Actor.Email = email
		}
	}
	return e
}

// text makes s acceptable to the event contract: control characters
// removed, cut to max bytes on a character boundary.
func text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
