package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTableKeepsWriterRowsAndAddsForwarding(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, []result{
		{Scenario: "poison", Accepted: 100, Stored: 100, Poison: 2, DeadLetter: 2, Recovery: 200 * time.Millisecond},
		{Scenario: "sink-500", Accepted: 100, Stored: 100, Recovery: 1500 * time.Millisecond,
			Forwarding: &forwarding{Forwardable: 100, Unique: 100, Deliveries: 103, Fault: "7 requests answered 500"}},
		{Scenario: "sink-hang", Accepted: 100, Stored: 100,
			Forwarding: &forwarding{Forwardable: 100, Unique: 99, Deliveries: 99, Missing: 1, Fault: "3 requests hung"}},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 5)
	cols := strings.Count(lines[0], "|")
	for _, l := range lines {
		require.Equal(t, cols, strings.Count(l, "|"), l)
	}
	require.Equal(t, "| poison | 100 | 100 | 0 | 0 | 2 / 2 | - | - | - | - | 200ms | - | ok |", lines[2])
	require.Equal(t, "| sink-500 | 100 | 100 | 0 | 0 | 0 / 0 | 100 | 100 | 3 | 0 | 1.5s | 7 requests answered 500 | ok |", lines[3])
	require.Contains(t, lines[4], "| 100 | 99 | 0 | 1 |")
	require.Contains(t, lines[4], "FAILED")
}

func TestResultOK(t *testing.T) {
	good := func() result {
		return result{Accepted: 10, Stored: 10, Forwarding: &forwarding{Forwardable: 10, Unique: 10, Deliveries: 12}}
	}
	for name, tc := range map[string]struct {
		change func(*result)
		ok     bool
	}{
		"all delivered, redeliveries allowed": {func(*result) {}, true},
		"writer row":                          {func(r *result) { r.Forwarding = nil }, true},
		"one not forwarded":                   {func(r *result) { r.Forwarding.Missing = 1 }, false},
		"forwarder dead letter":               {func(r *result) { r.Forwarding.DeadLetters = 1 }, false},
		"id never posted at the sink":         {func(r *result) { r.Forwarding.Unexpected = 1 }, false},
		"nothing forwardable":                 {func(r *result) { r.Forwarding.Forwardable = 0 }, false},
		"a check failed":                      {func(r *result) { r.Err = "head-of-line blocking" }, false},
		"duplicate visible":                   {func(r *result) { r.Duplicates = 1 }, false},
	} {
		t.Run(name, func(t *testing.T) {
			r := good()
			tc.change(&r)
			require.Equal(t, tc.ok, r.ok())
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 99*time.Millisecond, percentile(ds, 99))
	require.Equal(t, 50*time.Millisecond, percentile(ds, 50))
	require.Equal(t, time.Duration(0), percentile(nil, 99))
	require.Equal(t, 100*time.Millisecond, ds[0], "input left unsorted")
}

func postBatch(t *testing.T, s *sink, client *http.Client, ws string, ids ...string) (*http.Response, error) {
	t.Helper()
	var calls []string
	for _, id := range ids {
		calls = append(calls, fmt.Sprintf(`{"type":"track","messageId":%q,"properties":{"workspace_id":%q}}`, id, ws))
	}
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(calls, ",")+`]}`))
	require.NoError(t, err)
	req.SetBasicAuth(writeKeyPrefix+ws, "")
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestSinkCountsOnlyAcknowledgedEvents(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		status int // while the fault is on; 0: no answer
	}{
		{fault500, http.StatusInternalServerError},
		{fault429, http.StatusTooManyRequests},
		{faultHang, 0},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			s, err := newSink(tc.kind, "ws_a")
			require.NoError(t, err)
			t.Cleanup(s.close)
			client := &http.Client{Timeout: 200 * time.Millisecond}

			s.setFault(true)
			resp, err := postBatch(t, s, client, "ws_a", "e1", "e2")
			if tc.status == 0 {
				require.Error(t, err, "held past the client's timeout")
			} else {
				require.NoError(t, err)
				require.Equal(t, tc.status, resp.StatusCode)
			}
			if tc.kind == fault429 {
				require.Equal(t, "2", resp.Header.Get("Retry-After"))
			}
			require.False(t, s.delivering())

			s.setFault(false)
			resp, err = postBatch(t, s, client, "ws_a", "e1", "e2")
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got, _ := s.snapshot()
			require.Equal(t, map[string]int{"ws_a/e1": 1, "ws_a/e2": 1}, got)
			require.True(t, s.covers(map[string]bool{"ws_a/e1": true}))
			require.False(t, s.covers(map[string]bool{"ws_a/e3": true}))

			if tc.kind == fault429 {
				// The second request came back at once, not after Retry-After.
				require.ErrorContains(t, s.check(), "Retry-After 2 s not honoured")
			} else {
				require.NoError(t, s.check())
			}
		})
	}
}

func TestSinkSlowIsOneWorkspaceOnly(t *testing.T) {
	s, err := newSink(faultSlow, "ws_slow")
	require.NoError(t, err)
	t.Cleanup(s.close)
	s.setFault(true)
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := postBatch(t, s, client, "ws_fast", "f1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Less(t, time.Since(start), sinkSlowDelay, "other workspaces are answered at once")
	require.Error(t, s.check(), "the fault met no request yet")
	start = time.Now()
	resp, err = postBatch(t, s, client, "ws_slow", "s1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, time.Since(start), sinkSlowDelay)
	require.NoError(t, s.check())
	got, _ := s.snapshot()
	require.Equal(t, map[string]int{"ws_fast/f1": 1, "ws_slow/s1": 1}, got)
}

func TestSinkRejectsAWrongWriteKey(t *testing.T) {
	s, err := newSink(fault500, "")
	require.NoError(t, err)
	t.Cleanup(s.close)
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/batch", strings.NewReader(`{"batch":[]}`))
	require.NoError(t, err)
	req.SetBasicAuth("someone-else", "")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.ErrorContains(t, s.check(), "bad requests")
}
