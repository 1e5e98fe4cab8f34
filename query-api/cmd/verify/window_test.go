package main

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The window a check counts expiry against: -retention-days when given;
// under a legal hold no event time is before it, so nothing gone counts
// as expired.
func TestExpiryWindow(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	w, err := expiryWindow(context.Background(), nil, "ws_1", 400)
	require.NoError(t, err)
	require.Equal(t, now.Add(-400*24*time.Hour).UnixNano(), w.cut(now))
	require.Equal(t, "retention 400 days (-retention-days)", w.String())

	held := window{days: 30, hold: true, from: "the workspace's policy"}
	require.Equal(t, int64(math.MinInt64), held.cut(now))
	require.Contains(t, held.String(), "nothing expires")
}
