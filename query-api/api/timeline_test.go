package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/zones"
)

func TestTimelineCountsPerInterval(t *testing.T) {
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	r := &fakeReader{buckets: []store.Bucket{{Start: start, Count: 3}, {Start: start.Add(time.Hour), Count: 1}}}
	srv := newServer(t, r)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events/timeline?interval=hour&tz=Asia/Kolkata&event=Source+Created&q=actor:alice", tok)
	require.Equal(t, 200, status, body)
	require.Equal(t, "hour", body["interval"])
	require.Equal(t, []any{
		map[string]any{"start": "2026-11-01T10:00:00Z", "count": float64(3)},
		map[string]any{"start": "2026-11-01T11:00:00Z", "count": float64(1)},
	}, body["buckets"])
	require.Equal(t, store.Hour, r.interval)
	require.Equal(t, "Asia/Kolkata", r.zone.String())
	require.Equal(t, []string{"Source Created"}, r.filter.Events, "the view's filters")
	require.NotEmpty(t, r.filter.Search, "and its search")

	status, _ = get(t, srv, "/v1/workspaces/ws_1/audit-events/timeline", tok)
	require.Equal(t, 200, status)
	require.Equal(t, store.Hour, r.interval, "hour by default")
	require.Equal(t, time.UTC, r.zone, "UTC by default")
}

func TestTimelineRefusesBadParameters(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	since := time.Now().Add(-80 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tt := range []struct{ query, field string }{
		{"interval=week", "interval"},
		{"interval=hour&interval=day", "interval"},
		{"tz=Mars/Olympus", "tz"},
		{"tz=Local", "tz"},
		{"tz=Europe/Paris'%20OR%201", "tz"},
		{"tz=utc", "tz"},
		{"tz=", "tz"},
		{"interval=", "interval"},
		{"tz=europe/paris", "tz"},
		{"tz=Europe/Paris/", "tz"},
		{"tz=Europe/Paris&tz=UTC", "tz"},
		{"tz=Etc/GMT%2B15", "tz"},
		{"tz=..%2F..%2Fetc%2Fpasswd", "tz"},
		{"tz=" + string(make([]byte, 0)) + "a%2F%2Fb", "tz"},
		{"interval=5m&since=" + since + "&colour=1", "colour"},
	} {
		status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events/timeline?"+tt.query, tok)
		require.Equal(t, 400, status, "%s: %v", tt.query, body)
		require.Equal(t, tt.field, body["error"].(map[string]any)["field"], tt.query)
	}
}

// TestTimelineWidensTooFineIntervals: an interval that would make more
// than MaxBuckets buckets over the span is widened, and the answer says so.
func TestTimelineWidensTooFineIntervals(t *testing.T) {
	r := &fakeReader{}
	srv := newServer(t, r)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339) }
	day := 24 * time.Hour
	for _, tt := range []struct {
		query string
		want  store.Interval
	}{
		{"interval=minute&since=" + ago(2*time.Hour), store.Minute},
		{"interval=minute&since=" + ago(60*day), store.Minute}, // 86,400 minutes and a day ahead
		{"interval=minute&since=" + ago(80*day), store.FiveMinutes},
		{"interval=minute", store.Hour}, // the longest retention: 87,624 hours with the day ahead
		{"interval=5m", store.Hour},
		{"", store.Hour},
		{"interval=hour&since=1970-01-01T00:00:00Z&until=9999-12-31T00:00:00Z", store.Hour},
		{"interval=minute&since=" + ago(80*day) + "&until=" + ago(79*day), store.Minute},
		{"interval=day", store.Day},
	} {
		status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events/timeline?"+tt.query, tok)
		require.Equal(t, 200, status, "%s: %v", tt.query, body)
		require.Equal(t, string(tt.want), body["interval"], tt.query)
		require.Equal(t, tt.want, r.interval, tt.query)
	}
}

// TestTimelineAcceptsEveryListedZone: each name of zones.Names (the
// document's TimeZone enum) is accepted and reaches the store as itself.
func TestTimelineAcceptsEveryListedZone(t *testing.T) {
	r := &fakeReader{}
	srv := newServer(t, r)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	for _, name := range zones.Names() {
		status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events/timeline?interval=day&tz="+url.QueryEscape(name), tok)
		require.Equal(t, 200, status, "%s: %v", name, body)
		require.Equal(t, name, r.zone.String())
	}
}
