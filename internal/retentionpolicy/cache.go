package retentionpolicy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Cache holds every workspace's policy for readers on a hot path (the read
// API filters each read by its workspace's window). It reads the policies
// again once its copy is older than maxAge, on the next call of For, so a
// change takes effect within maxAge without a restart; it starts no
// goroutine. It is safe for concurrent use.
//
// The retention job does not use a Cache: it reads the policies at each
// run (All), so a hold placed a moment ago is never missed by a deletion.
type Cache struct {
	conn        Querier
	database    string
	defaultDays int
	maxAge      time.Duration
	now         func() time.Time

	refresh  sync.Mutex // held while reading the policies
	mu       sync.RWMutex
	policies map[string]Policy
	readAt   time.Time
	loaded   bool

	// Bounds (see Bound); zero: none.
	maxStale time.Duration
	backoff  time.Duration
	failedAt time.Time // of the last failed read
	lastErr  error
}

// ErrStale is returned (wrapped, with the last read's error) by For of a
// bounded Cache whose copy is older than its bound, or that has none.
var ErrStale = errors.New("retention policies unreadable: no copy young enough")

// Bound makes c fit a hot path that must not wait on ClickHouse: For never
// waits for a read another caller is running, reads at most once every
// backoff after a failed read, and fails with ErrStale once the copy it
// holds was read more than maxStale ago (or before any copy was read),
// instead of serving an old copy for ever. It returns c and must be
// called before c is used.
func (c *Cache) Bound(maxStale, backoff time.Duration) *Cache {
	c.maxStale, c.backoff = maxStale, backoff
	return c
}

// NewCache returns a cache of database's policies, read again when older
// than maxAge; workspaces without a policy get defaultDays. now is the
// clock (nil for time.Now).
func NewCache(conn Querier, database string, defaultDays int, maxAge time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{conn: conn, database: database, defaultDays: defaultDays, maxAge: maxAge, now: now}
}

// DefaultDays is the window of a workspace without a policy.
func (c *Cache) DefaultDays() int { return c.defaultDays }

// For returns workspace's policy, reading the policies first when the
// cached copy is older than maxAge (one caller reads; the others wait for
// it). When that read fails, the previous copy is served if there is one
// (the policies of at most one failed refresh ago) and the error is
// returned only when no copy was ever read.
func (c *Cache) For(ctx context.Context, workspace string) (Policy, error) {
	if err := c.fresh(ctx); err != nil {
		return Policy{}, err
	}
	c.mu.RLock()
	p, ok := c.policies[workspace]
	c.mu.RUnlock()
	if !ok {
		return Default(workspace, c.defaultDays), nil
	}
	return p, nil
}

// Refresh reads the policies now.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	return c.read(ctx)
}

func (c *Cache) fresh(ctx context.Context) error {
	if fresh, _ := c.state(); fresh {
		return nil
	}
	if c.maxStale > 0 {
		return c.freshBounded(ctx)
	}
	c.refresh.Lock()
	defer c.refresh.Unlock()
	fresh, loaded := c.state()
	if fresh {
		return nil // another caller read them meanwhile
	}
	if err := c.read(ctx); err != nil && !loaded {
		return err
	}
	// On an error with a copy at hand, it is served; the next call tries
	// again.
	return nil
}

// freshBounded is fresh under Bound: one read at a time, none within
// backoff of a failed one, and a copy served only up to maxStale.
func (c *Cache) freshBounded(ctx context.Context) error {
	c.mu.RLock()
	due := c.failedAt.IsZero() || c.now().Sub(c.failedAt) >= c.backoff
	c.mu.RUnlock()
	if due && c.refresh.TryLock() {
		err := c.read(ctx)
		c.mu.Lock()
		if err != nil {
			c.failedAt, c.lastErr = c.now(), err
		} else {
			c.failedAt, c.lastErr = time.Time{}, nil
		}
		c.mu.Unlock()
		c.refresh.Unlock()
		if err == nil {
			return nil
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.loaded && c.now().Sub(c.readAt) < c.maxStale {
		return nil
	}
	if c.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrStale, c.lastErr)
	}
	return ErrStale // the first read is under way
}

// state reports whether the copy is younger than maxAge, and whether
// there is one.
func (c *Cache) state() (fresh, loaded bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.loaded && c.now().Sub(c.readAt) < c.maxAge, c.loaded
}

func (c *Cache) read(ctx context.Context) error {
	all, err := All(ctx, c.conn, c.database)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.policies, c.readAt, c.loaded = all, c.now(), true
	c.mu.Unlock()
	return nil
}
