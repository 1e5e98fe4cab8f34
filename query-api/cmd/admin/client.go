package main

// Sending the request and reading the answer.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// refusedError is the API's refusal of a request (a 4xx or 5xx answer).
type refusedError struct {
	status int
	msg    string
}

func (e *refusedError) Error() string { return e.msg }

// flags names the command-line flag of each field the API names.
var flags = map[string]string{"workspace_id": "-workspace", "days": "-days", "reason": "-reason", "day": "-day", "until": "-until"}

// do sends the request and returns the answer, indented.
func (c *command) do(ctx context.Context) (string, error) {
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return "", err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, c.base+c.path, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "audittrail-admin")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", c.method, c.base+c.path, unwrapURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		return "", refused(resp.StatusCode, raw)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return "", fmt.Errorf("the answer is not JSON (is %s the admin API?)", c.base)
	}
	return out.String(), nil
}

// refused turns an error answer into a message naming the flag.
func refused(status int, raw []byte) error {
	var e struct {
		Error struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Field   string   `json:"field"`
			Details []string `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Message == "" {
		return &refusedError{status, fmt.Sprintf("the API answered %d %s", status, http.StatusText(status))}
	}
	msg := e.Error.Message
	if f, ok := flags[e.Error.Field]; ok {
		msg = "flag " + f + ": " + msg
	}
	for _, d := range e.Error.Details {
		msg += "\n  " + d
	}
	return &refusedError{status, fmt.Sprintf("%s (%d %s)", msg, status, e.Error.Code)}
}

// unwrapURL drops the *url.Error wrapper, which repeats the URL.
func unwrapURL(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return err
}
