package retentionpolicy_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// failingConn is the real server's connection, failing its queries while
// down is set; it counts the queries tried.
type failingConn struct {
	retentionpolicy.Querier
	down    atomic.Bool
	queries atomic.Int64
}

func (f *failingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	f.queries.Add(1)
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Querier.Query(ctx, q, args...)
}

// TestABoundedCacheNeitherServesAnOldCopyNorQueriesPerCall (18.16): while
// reads fail, the copy is served up to its bound and then For fails with
// ErrStale (the writer then keeps the event), and a failed read is tried
// again only after the backoff, however many calls come.
func TestABoundedCacheNeitherServesAnOldCopyNorQueriesPerCall(t *testing.T) {
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC()
	require.NoError(t, retentionpolicy.Set(ctx, conn, ch.Database, retentionpolicy.Policy{Workspace: "ws_1", Days: 400, ChangedBy: "op", ChangedAt: now.Add(-time.Hour)}))
	f := &failingConn{Querier: conn}
	clock := now
	c := retentionpolicy.NewCache(f, ch.Database, 90, time.Second, func() time.Time { return clock }).Bound(time.Minute, 5*time.Second)

	never := retentionpolicy.NewCache(f, ch.Database, 90, time.Second, func() time.Time { return clock }).Bound(time.Minute, 5*time.Second)
	f.down.Store(true)
	_, err := never.For(ctx, "ws_1")
	require.ErrorIs(t, err, retentionpolicy.ErrStale, "no copy read yet")
	f.down.Store(false)
	f.queries.Store(0)

	p, err := c.For(ctx, "ws_1")
	require.NoError(t, err)
	require.Equal(t, 400, p.Days)
	require.EqualValues(t, 1, f.queries.Load())

	f.down.Store(true)
	clock = clock.Add(2 * time.Second)
	for range 1000 {
		p, err = c.For(ctx, "ws_1")
		require.NoError(t, err, "a copy 2 s old is served")
		require.Equal(t, 400, p.Days)
	}
	require.EqualValues(t, 2, f.queries.Load(), "one failed read, then none within the backoff")

	clock = clock.Add(6 * time.Second)
	_, err = c.For(ctx, "ws_1")
	require.NoError(t, err)
	require.EqualValues(t, 3, f.queries.Load(), "tried again after the backoff")

	clock = clock.Add(time.Minute)
	for range 100 {
		_, err = c.For(ctx, "ws_1")
		require.ErrorIs(t, err, retentionpolicy.ErrStale, "a copy older than the bound is not served")
		require.ErrorContains(t, err, "connection refused")
	}
	require.EqualValues(t, 4, f.queries.Load())

	f.down.Store(false)
	clock = clock.Add(6 * time.Second)
	p, err = c.For(ctx, "ws_1")
	require.NoError(t, err)
	require.Equal(t, 400, p.Days)
}
