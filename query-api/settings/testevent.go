package settings

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// TestEventName is the track event sent by POST .../forwarding/test. It is
// not an audit event: it is not stored in the trail.
const TestEventName = "Audit Forwarding Test"

// testTimeout bounds the call to the owner's target.
const testTimeout = 10 * time.Second

// TestResult is the answer of POST .../forwarding/test.
type TestResult struct {
	OK     bool `json:"ok"`
	Status int  `json:"status"` // the target's HTTP status, 0 when it did not answer
	// Message is fixed text: the status answered, or one of the Reason*
	// constants. The target's response body is never shown.
	Message string `json:"message"`
}

// sendTest posts one track call to the saved forwarding target right away,
// the way the forwarder does (POST {url}/v1/batch, Basic auth with the write
// key), through the egress client, and reports the status the target
// answered or a fixed reason (ReasonTimeout, ...). It works whether
// forwarding is on or off, so an owner can check a target before enabling
// it. A workspace has one test call at a time, and at most
// Options.MaxTestCalls run in all; others are answered 429 "busy" with
// Retry-After.
func (h *handler) sendTest(c echo.Context) error {
	ws := c.Param("workspace_id")
	v, err := h.current(ws, trackingplan.KindForwarding)
	if err != nil {
		return err
	}
	t, err := testTarget(c, v.(*trackingplan.Forwarding))
	if err != nil {
		return err
	}
	claims := auth.FromContext(c)
	now := h.o.Now().UTC()
	call := map[string]any{
		"type": "track", "event": TestEventName, "userId": claims.Subject,
		"messageId": event.NewID(), "timestamp": now.Format(time.RFC3339Nano),
		"properties": map[string]any{"workspace_id": ws, "test": true, "requested_by": claims.Subject},
		"context":    map[string]any{"library": map[string]string{"name": "audittrail"}},
	}
	body, err := json.Marshal(map[string]any{"batch": []any{call}, "sentAt": now.Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("encode test event: %w", err)
	}
	if err := h.tests.acquire(ws); err != nil {
		return h.tests.refuse(c, err)
	}
	defer h.tests.release(ws)
	ctx, cancel := context.WithTimeout(c.Request().Context(), testTimeout)
	defer cancel()
	target, err := t.BatchURL()
	if err != nil {
		return &httpserver.Error{Status: http.StatusConflict, Code: "bad_target", Field: "target.url", Message: "the saved target URL cannot be used"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &httpserver.Error{Status: http.StatusConflict, Code: "bad_target", Field: "target.url", Message: "the saved target URL cannot be used"}
	}
	req.SetBasicAuth(t.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "audittrail-forwarder/1")
	resp, err := h.client.Do(req)
	if err != nil {
		return c.JSON(http.StatusOK, TestResult{Message: failureReason(ctx, err)})
	}
	// The body is read (a little, so that the connection can be reused)
	// but never shown: the call must not become a way to read what an
	// address answers.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res := TestResult{OK: resp.StatusCode >= 200 && resp.StatusCode < 300, Status: resp.StatusCode}
	switch {
	case res.OK:
		res.Message = fmt.Sprintf("the target accepted the test event (HTTP %d)", resp.StatusCode)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Message = ReasonRedirect
	default:
		res.Message = fmt.Sprintf("the target answered HTTP %d", resp.StatusCode)
	}
	return c.JSON(http.StatusOK, res)
}

// testRequest is the optional body of POST .../forwarding/test.
type testRequest struct {
	// Target names the saved target to test (a JSON string); omitted: the
	// current target. Raw, so that null is told from omitted.
	Target json.RawMessage `json:"target"`
}

// maxTestBody bounds the body of a test call.
const maxTestBody = 4 << 10

// testTarget returns the target a test call is for: the current one, or
// the saved target the body names. No body, or {}, is the current target.
func testTarget(c echo.Context, f *trackingplan.Forwarding) (trackingplan.Target, error) {
	body, err := httpserver.ReadBody(c, maxTestBody)
	if err != nil {
		return trackingplan.Target{}, err
	}
	t, field := f.Target, "target.url"
	if len(bytes.TrimSpace(body)) > 0 {
		var req testRequest
		if err := decodeObject(body, &req); err != nil {
			return t, err
		}
		if string(req.Target) == "null" {
			return t, httpserver.BadRequest("target", "must be a saved target's name, not null; leave it out for the current target")
		}
		if req.Target != nil {
			var name string
			if err := json.Unmarshal(req.Target, &name); err != nil {
				return t, httpserver.BadRequest("target", "must be a string: a saved target's name")
			}
			saved, ok := f.SavedTarget(name)
			if !ok {
				// A well-formed request naming what the settings do not
				// hold: the same answer as no target saved.
				return t, &httpserver.Error{Status: http.StatusConflict, Code: "no_target", Field: "target",
					Message: "no saved target has this name"}
			}
			t, field = saved, "target"
		}
	}
	if t.URL == "" || t.WriteKey == "" {
		return t, &httpserver.Error{Status: http.StatusConflict, Code: "no_target", Field: field,
			Message: "save a target URL and write key before sending a test event"}
	}
	return t, nil
}

// The reasons a test call reports when the target gave no acceptable
// answer; nothing else (no error text, no response body) is shown.
const (
	ReasonTimeout     = "timeout"
	ReasonRefused     = "refused by policy"
	ReasonUnreachable = "unreachable"
	ReasonTLS         = "TLS error"
	ReasonRedirect    = "redirect not followed"
)

// failureReason maps a failed call to one of the fixed reasons.
func failureReason(ctx context.Context, err error) string {
	var ne net.Error
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invalidErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	switch {
	case errors.Is(err, egress.ErrRefused):
		return ReasonRefused
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr),
		errors.As(err, &invalidErr), errors.As(err, &recErr), errors.As(err, &alertErr):
		return ReasonTLS
	}
	return ReasonUnreachable
}
