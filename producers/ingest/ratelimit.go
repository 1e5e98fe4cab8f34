package ingest

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/event"
)

// RateLimits configures the gateway's fair share: token buckets of events
// per second for each workspace and each credential. A request takes one
// token per event from the bucket of every workspace it writes and from its
// credential's bucket, all or nothing. A zero rate turns that limit off
// (the zero value: no limits); FromEnv sets the declared defaults
// (config.IngestWorkspaceRate and the others).
type RateLimits struct {
	// WorkspaceRate is the events per second one workspace may send
	// (across credentials) once its burst is spent; WorkspaceBurst the
	// bucket's size, so the most events a workspace sends at once.
	WorkspaceRate  int
	WorkspaceBurst int
	// CredentialRate and CredentialBurst bound one credential (across
	// workspaces) the same way.
	CredentialRate  int
	CredentialBurst int
	// MaxKeys bounds the buckets each limit keeps (default
	// config.IngestRateMaxKeys.Default): a bucket idle long enough to refill is dropped
	// (a fresh one behaves the same), and past MaxKeys the least recently
	// used is dropped, so invented workspace ids cannot grow memory.
	MaxKeys int
}

// Validate reports limits that cannot work; each message names the
// variable and what it accepts. A burst below a full batch (MaxBatch, the
// bursts' declared minimum) would let no batch of that size ever pass.
func (l RateLimits) Validate() error {
	check := func(rate config.Int, burst config.Int, r, b int) error {
		if err := rate.Check(r); err != nil || r == 0 {
			return err
		}
		return burst.Check(b)
	}
	return errors.Join(
		check(config.IngestWorkspaceRate, config.IngestWorkspaceBurst, l.WorkspaceRate, l.WorkspaceBurst),
		check(config.IngestCredentialRate, config.IngestCredentialBurst, l.CredentialRate, l.CredentialBurst),
		config.IngestRateMaxKeys.Check(l.MaxKeys))
}

// bucket is one token bucket: tokens at last, refilled at the limit's rate
// up to its burst.
type bucket struct {
	key    string
	tokens float64
	last   time.Time
	elem   *list.Element
}

// buckets is one limit's buckets by key, least recently used last.
type buckets struct {
	rate, burst float64
	maxKeys     int
	byKey       map[string]*bucket
	lru         *list.List // of *bucket, most recently used first
}

func newBuckets(rate, burst, maxKeys int) *buckets {
	return &buckets{rate: float64(rate), burst: float64(burst), maxKeys: maxKeys,
		byKey: map[string]*bucket{}, lru: list.New()}
}

// level is the tokens key's bucket holds at now (a full bucket when it has
// none).
func (b *buckets) level(key string, now time.Time) float64 {
	bk, ok := b.byKey[key]
	if !ok {
		return b.burst
	}
	elapsed := now.Sub(bk.last).Seconds()
	if elapsed < 0 { // a clock stepping back refills nothing
		elapsed = 0
	}
	return math.Min(b.burst, bk.tokens+elapsed*b.rate)
}

// wait is how long until key's bucket holds n tokens.
func (b *buckets) wait(key string, n int, now time.Time) time.Duration {
	short := float64(n) - b.level(key, now)
	if short <= 0 {
		return 0
	}
	return time.Duration(short / b.rate * float64(time.Second))
}

// take removes n tokens from key's bucket (the caller checked they are
// there), then drops idle buckets and those past maxKeys.
func (b *buckets) take(key string, n int, now time.Time) {
	tokens := b.level(key, now) - float64(n)
	bk, ok := b.byKey[key]
	if !ok {
		// A copy: the key may be part of a request's body.
		key = strings.Clone(key)
		bk = &bucket{key: key}
		bk.elem = b.lru.PushFront(bk)
		b.byKey[key] = bk
	} else {
		b.lru.MoveToFront(bk.elem)
	}
	bk.tokens, bk.last = tokens, now
	b.evict(now)
}

// evict drops, from the least recently used end, buckets that have
// refilled (forgetting them changes nothing), and any past maxKeys. Each
// bucket is dropped once, so the work is constant per take on average.
func (b *buckets) evict(now time.Time) {
	for e := b.lru.Back(); e != nil; e = b.lru.Back() {
		bk := e.Value.(*bucket)
		if len(b.byKey) <= b.maxKeys && b.level(bk.key, now) < b.burst {
			return
		}
		b.lru.Remove(e)
		delete(b.byKey, bk.key)
	}
}

// Len is the number of buckets kept.
func (b *buckets) Len() int { return len(b.byKey) }

// Limiter holds the gateway's buckets. It is safe for concurrent use.
type Limiter struct {
	mu         sync.Mutex
	workspaces *buckets // nil: no workspace limit
	creds      *buckets // nil: no credential limit
}

// NewLimiter returns the limiter of l (l valid).
func NewLimiter(l RateLimits) *Limiter {
	if l.MaxKeys <= 0 {
		l.MaxKeys = config.IngestRateMaxKeys.Default
	}
	lim := &Limiter{}
	if l.WorkspaceRate > 0 {
		lim.workspaces = newBuckets(l.WorkspaceRate, l.WorkspaceBurst, l.MaxKeys)
	}
	if l.CredentialRate > 0 {
		lim.creds = newBuckets(l.CredentialRate, l.CredentialBurst, l.MaxKeys)
	}
	return lim
}

// Refusal says which bucket refused a request and when to retry.
type Refusal struct {
	// Workspace is the first workspace (in the order given) whose bucket
	// lacks tokens; empty when only the credential's does.
	Workspace string
	// Credential is set when the credential's bucket lacks tokens.
	Credential string
	// RetryAfter is how long until every bucket the request needs holds
	// enough tokens (if no other request takes them first).
	RetryAfter time.Duration
}

// Allow takes count[ws] tokens from each workspace's bucket (workspaces in
// request order, each once) and the total from the credential's, if every
// bucket holds enough; otherwise it takes nothing and returns the refusal.
func (l *Limiter) Allow(credential string, workspaces []string, count map[string]int, now time.Time) *Refusal {
	if l.workspaces == nil && l.creds == nil {
		return nil
	}
	total := 0
	for _, n := range count {
		total += n
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var r Refusal
	if l.workspaces != nil {
		for _, ws := range workspaces {
			if w := l.workspaces.wait(ws, count[ws], now); w > 0 {
				if r.Workspace == "" {
					r.Workspace = ws
				}
				r.RetryAfter = max(r.RetryAfter, w)
			}
		}
	}
	if l.creds != nil {
		if w := l.creds.wait(credential, total, now); w > 0 {
			r.Credential = credential
			r.RetryAfter = max(r.RetryAfter, w)
		}
	}
	if r.RetryAfter > 0 {
		return &r
	}
	if l.workspaces != nil {
		for _, ws := range workspaces {
			l.workspaces.take(ws, count[ws], now)
		}
	}
	if l.creds != nil {
		l.creds.take(credential, total, now)
	}
	return nil
}

// Buckets is the number of workspace and credential buckets kept.
func (l *Limiter) Buckets() (workspaces, credentials int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.workspaces != nil {
		workspaces = l.workspaces.Len()
	}
	if l.creds != nil {
		credentials = l.creds.Len()
	}
	return workspaces, credentials
}

// overLimit takes the request's tokens, or returns the 429 naming the
// first workspace (batch[i].workspace_id, i its first event) or the
// credential over its limit, with Retry-After in whole seconds rounded up.
// A refused request takes no tokens.
func (g *Gateway) overLimit(c echo.Context, credentialID string, events []event.Event, batch bool) *httpserver.Error {
	count := make(map[string]int, 1)
	var order []string
	first := make(map[string]int, 1)
	for i := range events {
		ws := events[i].WorkspaceID
		if _, seen := count[ws]; !seen {
			order = append(order, ws)
			first[ws] = i
		}
		count[ws]++
	}
	r := g.limiter.Allow(credentialID, order, count, g.now())
	if r == nil {
		return nil
	}
	secs := int64(math.Ceil(r.RetryAfter.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	e := &httpserver.Error{Status: http.StatusTooManyRequests, Code: "rate_limited"}
	if r.Workspace != "" {
		g.limited.WithLabelValues("workspace").Inc()
		e.Field = "workspace_id"
		if batch {
			e.Field = fmt.Sprintf("batch[%d].workspace_id", first[r.Workspace])
		}
		e.Message = fmt.Sprintf("workspace %q is over its limit of %d events/s (burst %d); nothing was published: retry after %d s",
			r.Workspace, g.cfg.Limits.WorkspaceRate, g.cfg.Limits.WorkspaceBurst, max(secs, 1))
		return e
	}
	g.limited.WithLabelValues("credential").Inc()
	e.Message = fmt.Sprintf("credential %s is over its limit of %d events/s (burst %d); nothing was published: retry after %d s",
		r.Credential, g.cfg.Limits.CredentialRate, g.cfg.Limits.CredentialBurst, max(secs, 1))
	return e
}
