package forward

// HTTP delivery: the Sender posts batches of track calls and alerts to the
// workspaces' URLs through the egress guard, and each failure is
// classified as a DeliveryError (retryable, refused or final).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

var errTooLarge = errors.New("event larger than 32 KB once encoded")

// DeliveryError is a failed delivery attempt.
type DeliveryError struct {
	// Status is the HTTP status (0 for a transport error or timeout).
	Status int
	// Retryable: timeouts, transport errors, 429 and 5xx.
	Retryable bool
	// RetryAfter is the server's Retry-After (429/503), 0 when absent.
	RetryAfter time.Duration
	Err        error
}

func (e *DeliveryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// TargetRefused reports a final answer that does not depend on the events
// sent: the target refuses the credentials (401, 403) or has no such
// source (404, 410). A source target's delivery pauses on it instead of
// splitting the batch or dead-lettering the events; any other final 4xx
// is taken as a refusal of the content, and the batch is split to isolate
// the refused events.
func (e *DeliveryError) TargetRefused() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// Reason is the dead-letter reason of a final failure.
func (e *DeliveryError) Reason() string {
	if e.Retryable {
		return "retries_exhausted"
	}
	return "rejected"
}

// Sender posts to targets over HTTP. Safe for concurrent use.
type Sender struct {
	client *http.Client
	now    func() time.Time
}

// NewSender returns a sender whose requests time out after timeout and
// reach only what policy allows (egress: public addresses and the
// operator's allow-list; redirects are not followed).
func NewSender(timeout time.Duration, maxConnsPerHost int, policy *egress.Policy, now func() time.Time) *Sender {
	cl := policy.Client(egress.ClientOptions{Timeout: timeout, MaxIdleConns: 1024, MaxIdleConnsPerHost: maxConnsPerHost})
	return &Sender{client: cl, now: now}
}

// SendBatch posts encoded track calls as one batch to {url}/v1/batch with
// HTTP Basic auth (write key as user name, empty password). The caller
// keeps the body under MaxRequestBytes.
func (s *Sender) SendBatch(ctx context.Context, t trackingplan.Target, calls [][]byte) error {
	// The body is allocated once, at its size.
	size := len(`{"batch":[],"sentAt":""}`) + len(time.RFC3339Nano) + len(calls)
	for _, c := range calls {
		size += len(c)
	}
	body := make([]byte, 0, size)
	body = append(body, `{"batch":[`...)
	for i, c := range calls {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, c...)
	}
	body = append(body, `],"sentAt":"`...)
	body = s.now().UTC().AppendFormat(body, time.RFC3339Nano)
	body = append(body, `"}`...)
	u, err := t.BatchURL()
	if err != nil {
		return &DeliveryError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.SetBasicAuth(t.WriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "audittrail-forwarder/1")
	return s.do(req)
}

// SendAlert posts {"text": text} to a chat incoming webhook.
func (s *Sender) SendAlert(ctx context.Context, url, text string) error {
	b, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return &DeliveryError{Err: err}
	}
	if _, err := trackingplan.Callable(url); err != nil {
		return &DeliveryError{Err: errors.New("webhook URL: not a usable URL")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		// The parser's error quotes the URL, whose path is the secret.
		return &DeliveryError{Err: errors.New("webhook URL: not a usable URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(req)
}

func (s *Sender) do(req *http.Request) error {
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL (a webhook's path is its secret) stays out of the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Classify(0, nil, err, s.now())
	}
	defer resp.Body.Close()
	// The body is read (so that the connection can be reused) but never
	// kept: what a target answers must not reach dead-letter reasons, logs
	// or alerts, which operators' tools read.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return Classify(resp.StatusCode, resp.Header, errors.New(statusText(resp.StatusCode)), s.now())
}

// statusText is the fixed text of an answer's status, never its body.
func statusText(status int) string {
	switch {
	case status >= 300 && status < 400:
		return "redirect not followed"
	case http.StatusText(status) != "":
		return http.StatusText(status)
	}
	return "status not known"
}

// Classify is the one place that decides what is retried: transport errors
// and timeouts, 408, 429 and 5xx are retryable (429 and 503 honour
// Retry-After, in seconds or as an HTTP date); other statuses (3xx
// included: redirects are not followed) and a target the outbound policy
// refuses (egress.ErrRefused) are final, and DeliveryError.TargetRefused
// tells a refused target from refused content.
func Classify(status int, h http.Header, err error, now time.Time) *DeliveryError {
	if errors.Is(err, egress.ErrRefused) {
		// The outbound policy refuses the target's address: final, and
		// nothing more than that is said.
		return &DeliveryError{Err: egress.ErrRefused}
	}
	if status == 0 {
		return &DeliveryError{Retryable: true, Err: err}
	}
	e := &DeliveryError{Status: status, Err: err}
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		e.Retryable = true
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(h.Get("Retry-After"), now)
	}
	return e
}

func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
