package main

// The sink scenarios' in-process target: the fault it injects, what it
// acknowledged and when, and its own checks of the forwarder.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"
)

// Sink faults, one per scenario.
const (
	fault500  = "500"  // every request answered 500
	fault429  = "429"  // every request answered 429 with Retry-After
	faultHang = "hang" // every request held, unanswered, until the forwarder gives up
	faultSlow = "slow" // one workspace's requests answered 200 after sinkSlowDelay
)

const (
	// sinkTimeout is the forwarder's AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT
	// in the sink scenarios: a hung request is given up after it.
	sinkTimeout = 3 * time.Second
	// sinkRetryAfter is the Retry-After (seconds) of the 429s.
	sinkRetryAfter = 2
	// sinkSlowDelay is how long the slow workspace's requests take; under
	// sinkTimeout, so they succeed.
	sinkSlowDelay = 2 * time.Second
	// writeKeyPrefix + workspace is each workspace's write key.
	writeKeyPrefix = "drill-write-key-"
)

// sink is the forwarding target of the sink scenarios: an HTTP tracking
// API endpoint (POST /v1/batch) that records every event it acknowledged
// by workspace and messageId, and injects one fault while it is switched
// on. Only 2xx answers count as deliveries: a 500, a 429 and a hung
// request deliver nothing. Safe for concurrent use.
type sink struct {
	kind   string // fault injected while on
	slowWS string // faultSlow: the workspace that is slow
	srv    *http.Server
	url    string
	closed chan struct{}

	mu         sync.Mutex
	on         bool
	got        map[string]int       // "ws/messageId" -> deliveries acknowledged
	firstAt    map[string]time.Time // "ws/messageId" -> first acknowledged
	faulted    int                  // requests that met the fault
	bad        []string             // protocol errors (auth, body)
	last429    map[string]time.Time // workspace -> when it was last answered 429
	minWait    time.Duration        // shortest time from a 429 to the workspace's next request
	waitsTimed int
}

func newSink(kind, slowWS string) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	s := &sink{kind: kind, slowWS: slowWS, url: "http://" + ln.Addr().String(), closed: make(chan struct{}),
		got: map[string]int{}, firstAt: map[string]time.Time{}, last429: map[string]time.Time{}, minWait: -1}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// setFault switches the fault on or off. Requests already held keep
// their fault.
func (s *sink) setFault(on bool) {
	s.mu.Lock()
	s.on = on
	s.mu.Unlock()
}

func (s *sink) close() {
	close(s.closed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

type trackBatch struct {
	Batch []struct {
		MessageID  string `json:"messageId"`
		Properties struct {
			WorkspaceID string `json:"workspace_id"`
		} `json:"properties"`
	} `json:"batch"`
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	user, _, _ := r.BasicAuth()
	ws, keyed := strings.CutPrefix(user, writeKeyPrefix)
	var b trackBatch
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/batch" || !keyed || err != nil {
		s.mu.Lock()
		s.bad = append(s.bad, fmt.Sprintf("%s %s user %q: %v", r.Method, r.URL.Path, user, err))
		s.mu.Unlock()
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	if t, ok := s.last429[ws]; ok {
		// The forwarder must wait Retry-After before this workspace's
		// next request.
		if d := arrived.Sub(t); s.minWait < 0 || d < s.minWait {
			s.minWait = d
		}
		s.waitsTimed++
		delete(s.last429, ws)
	}
	fault := s.on && (s.kind != faultSlow || ws == s.slowWS)
	if fault {
		s.faulted++
	}
	s.mu.Unlock()

	if fault {
		switch s.kind {
		case fault500:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case fault429:
			s.mu.Lock()
			s.last429[ws] = time.Now()
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(sinkRetryAfter))
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		case faultHang:
			// Never answered in time: held until the forwarder gives up.
			select {
			case <-r.Context().Done():
			case <-s.closed:
			case <-time.After(10 * sinkTimeout):
			}
			return
		case faultSlow:
			select {
			case <-time.After(sinkSlowDelay):
			case <-r.Context().Done():
				return
			}
		}
	}

	now := time.Now()
	s.mu.Lock()
	for _, c := range b.Batch {
		if c.Properties.WorkspaceID != ws {
			s.bad = append(s.bad, fmt.Sprintf("event %s of %s sent with the write key of %s", c.MessageID, c.Properties.WorkspaceID, ws))
		}
		k := c.Properties.WorkspaceID + "/" + c.MessageID
		if s.got[k] == 0 {
			s.firstAt[k] = now
		}
		s.got[k]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"success":true}`))
}

// delivering reports whether any event was acknowledged yet.
func (s *sink) delivering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got) > 0
}

// covers reports whether every id of want was acknowledged.
func (s *sink) covers(want map[string]bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range want {
		if s.got[id] == 0 {
			return false
		}
	}
	return true
}

// snapshot copies what the sink acknowledged.
func (s *sink) snapshot() (got map[string]int, firstAt map[string]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got = make(map[string]int, len(s.got))
	for k, v := range s.got {
		got[k] = v
	}
	firstAt = make(map[string]time.Time, len(s.firstAt))
	for k, v := range s.firstAt {
		firstAt[k] = v
	}
	return got, firstAt
}

// check reports a protocol error or a fault that never met a request.
func (s *sink) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		return fmt.Errorf("sink: %d bad requests, first: %s", len(s.bad), s.bad[0])
	}
	if s.faulted == 0 {
		return errors.New("sink: the fault met no request")
	}
	if s.kind == fault429 {
		if s.waitsTimed == 0 {
			return errors.New("sink: no request followed a 429")
		}
		if s.minWait < sinkRetryAfter*time.Second-50*time.Millisecond {
			return fmt.Errorf("sink: Retry-After %d s not honoured: a workspace came back %s after its 429",
				sinkRetryAfter, s.minWait.Round(time.Millisecond))
		}
	}
	return nil
}

// describe says what the sink did during the fault, for the table.
func (s *sink) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.kind {
	case fault500:
		return fmt.Sprintf("%d requests answered 500", s.faulted)
	case fault429:
		return fmt.Sprintf("%d requests answered 429 (Retry-After %d); shortest wait after one %s",
			s.faulted, sinkRetryAfter, ms(s.minWait))
	case faultHang:
		return fmt.Sprintf("%d requests hung past the %s timeout", s.faulted, ms(sinkTimeout))
	case faultSlow:
		return fmt.Sprintf("%d requests of %s answered after %s", s.faulted, s.slowWS, ms(sinkSlowDelay))
	}
	return ""
}

// percentile returns the p-th percentile (0-100) of ds, 0 when empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// ms rounds d to the millisecond for the table ("4.283s", "12ms").
func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
