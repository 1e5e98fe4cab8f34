package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

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
	OK      bool   `json:"ok"`
	Status  int    `json:"status"` // the target's HTTP status, 0 when it did not answer
	Message string `json:"message"`
}

// sendTest posts one track call to the saved forwarding target right away,
// the way the forwarder does (POST {url}/v1/batch, Basic auth with the write
// key), and reports what the target answered. It works whether forwarding
// is on or off, so an owner can check a target before enabling it.
func (h *handler) sendTest(c echo.Context) error {
	ws := c.Param("workspace_id")
	v, err := h.current(ws, trackingplan.KindForwarding)
	if err != nil {
		return err
	}
	f := v.(*trackingplan.Forwarding)
	if f.Target.URL == "" || f.Target.WriteKey == "" {
		return &httpserver.Error{Status: http.StatusConflict, Code: "no_target", Field: "target.url",
			Message: "save a target URL and write key before sending a test event"}
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
	ctx, cancel := context.WithTimeout(c.Request().Context(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(f.Target.URL, "/")+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return &httpserver.Error{Status: http.StatusConflict, Code: "bad_target", Field: "target.url", Message: "the saved target URL cannot be used: " + err.Error()}
	}
	req.SetBasicAuth(f.Target.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "audittrail-forwarder/1")
	resp, err := h.client().Do(req)
	if err != nil {
		return c.JSON(http.StatusOK, TestResult{Message: "the target did not answer: " + truncate(err.Error(), 300)})
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	res := TestResult{OK: resp.StatusCode >= 200 && resp.StatusCode < 300, Status: resp.StatusCode}
	if res.OK {
		res.Message = fmt.Sprintf("the target accepted the test event (HTTP %d)", resp.StatusCode)
	} else {
		res.Message = fmt.Sprintf("the target answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(snippet)))
	}
	return c.JSON(http.StatusOK, res)
}

func (h *handler) client() *http.Client {
	if h.o.HTTPClient != nil {
		return h.o.HTTPClient
	}
	return &http.Client{Timeout: testTimeout}
}
