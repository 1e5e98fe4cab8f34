package main

// The load through the gateway, its acknowledgements and latencies, and
// the forwarding sink that counts deliveries.

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

const (
	ingestToken = "drill-cluster-ingest-token-0123456789"
	loadBatch   = 50 // events per request
	maxInFlight = 48 // requests in flight at once (the gateway admits 64)
)

// load posts batches of realistic events with client-assigned ids to the
// gateway at a steady rate and keeps the ids of every event posted and of
// every event the gateway answered 202 for. A batch the gateway did not
// confirm is retried with the same ids, as a producer would.
type load struct {
	url    string
	client *http.Client
	gen    *loadgen.Generator // used by one goroutine at a time (under mu)

	mu        sync.Mutex
	sent      map[string]bool      // "ws/id" of every event posted
	accepted  map[string]time.Time // "ws/id" -> when the 202 came
	unsure    int                  // batches never confirmed after retries
	failures  int                  // attempts that got no 202
	latencies []time.Duration      // per confirmed attempt
	acceptAt  []time.Time          // time of every 202, in order of arrival
}

func newLoad(url string, seed uint64) (*load, error) {
	g, err := loadgen.New(loadgen.Config{Workspaces: loadWorkspaces, ZipfS: 1.2, Seed: seed}, time.Now)
	if err != nil {
		return nil, err
	}
	return &load{url: url, gen: g, client: &http.Client{Timeout: 40 * time.Second},
		sent: map[string]bool{}, accepted: map[string]time.Time{}}, nil
}

// next makes n events.
func (l *load) next(n int) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]event.Event, n)
	for i := range out {
		out[i] = l.gen.Next()
	}
	return out
}

// post sends events as one batch, retrying up to three times; it returns
// whether the gateway accepted them.
func (l *load) post(ctx context.Context, events []event.Event) bool {
	body, err := json.Marshal(map[string]any{"batch": events})
	if err != nil {
		return false
	}
	l.mu.Lock()
	for i := range events {
		l.sent[key(events[i].WorkspaceID, events[i].ID)] = true
	}
	l.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		start := time.Now()
		ids, err := l.postOnce(context.WithoutCancel(ctx), body)
		if err != nil {
			l.mu.Lock()
			l.failures++
			l.mu.Unlock()
			continue
		}
		now := time.Now()
		l.mu.Lock()
		for i, id := range ids { // ids come back in batch order
			l.accepted[key(events[i].WorkspaceID, id)] = now
		}
		l.latencies = append(l.latencies, now.Sub(start))
		l.acceptAt = append(l.acceptAt, now)
		l.mu.Unlock()
		return true
	}
	l.mu.Lock()
	l.unsure++
	l.mu.Unlock()
	return false
}

func (l *load) postOnce(ctx context.Context, body []byte) ([]string, error) {
	return drillkit.Post(ctx, l.client, l.url+"/v1/events", ingestToken, body)
}

// run posts rate events/s until ctx ends, then waits for the requests in
// flight (they still get their answer and their retries).
func (l *load) run(ctx context.Context, rate int) {
	interval := time.Second * loadBatch / time.Duration(rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		events := l.next(loadBatch)
		wg.Go(func() {
			defer func() { <-sem }()
			l.post(ctx, events)
		})
	}
}

// snapshot copies the accepted and sent sets.
func (l *load) snapshot() (accepted map[string]time.Time, sent map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	accepted = make(map[string]time.Time, len(l.accepted))
	for k, v := range l.accepted {
		accepted[k] = v
	}
	sent = make(map[string]bool, len(l.sent))
	for k, v := range l.sent {
		sent[k] = v
	}
	return accepted, sent
}

// longestGap is the longest time between two consecutive 202s within
// [from, to]: how long the gateway confirmed nothing.
func (l *load) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	at := slices.Clone(l.acceptAt)
	l.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	prev := from
	for _, t := range at {
		if t.Before(from) || t.After(to) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return max(gap, to.Sub(prev))
}

// latency returns the p50, p99 and max of confirmed requests.
func (l *load) latency() (p50, p99, maxLat time.Duration) {
	l.mu.Lock()
	ls := slices.Clone(l.latencies)
	l.mu.Unlock()
	if len(ls) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ls)
	return ls[len(ls)/2], ls[len(ls)*99/100], ls[len(ls)-1]
}

func key(ws, id string) string { return ws + "/" + id }

// sink is the forwarding target: it answers the track-call batches the
// forwarders post to /v1/batch and counts deliveries per messageId.
type sink struct {
	srv *http.Server
	url string

	mu         sync.Mutex
	deliveries map[string]int // messageId -> deliveries
	requests   int
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), deliveries: map[string]int{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/batch" {
		http.NotFound(w, r)
		return
	}
	var body struct {
		Batch []struct {
			MessageID string `json:"messageId"`
		} `json:"batch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	for _, c := range body.Batch {
		s.deliveries[c.MessageID]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"success":true}`))
}

// counts copies the deliveries per messageId.
func (s *sink) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.deliveries))
	for k, v := range s.deliveries {
		out[k] = v
	}
	return out
}

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
