package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/zones"
	"github.com/audittrail/audittrail/schemas/event"
)

// MaxBuckets bounds the buckets a timeline may span: a finer interval is
// widened (minute, 5m, hour, day) until the span holds at most this many;
// a day always does.
const MaxBuckets = 100000

// maxSpan is the longest retention: no event older than this before now is
// answered (and none lies more than event.MaxFutureSkew after now).
const maxSpan = 3650 * 24 * time.Hour

// widths are the intervals from the finest.
var widths = []store.Interval{store.Minute, store.FiveMinutes, store.Hour, store.Day}

// TimelineResponse is the body of GET .../audit-events/timeline.
type TimelineResponse struct {
	Interval store.Interval `json:"interval"`
	Buckets  []store.Bucket `json:"buckets"`
}

// timeline counts the matching events per interval (minute, 5m, hour or
// day; hour by default; widened when the span would hold more than
// MaxBuckets) of the zone tz's clock (a name of zones.Names; UTC by
// default), computed in ClickHouse. The answer names the interval used.
func (a *API) timeline(c echo.Context) error {
	f, iv, zone, err := ParseTimeline(c.Param("workspace_id"), c.QueryParams(), a.o.Now())
	if err != nil {
		return err
	}
	buckets, err := a.o.Events.Histogram(c.Request().Context(), f, iv, zone)
	if err != nil {
		return a.storeError("timeline", err)
	}
	return c.JSON(http.StatusOK, TimelineResponse{Interval: iv, Buckets: buckets})
}

// ParseTimeline validates the timeline endpoint's query parameters as the
// endpoint does at now and returns the store filter, interval and zone it
// would use (for tools that run the same reads, such as the benchmark).
func ParseTimeline(workspaceID string, q url.Values, now time.Time) (store.Filter, store.Interval, *time.Location, error) {
	f, err := parseFilter(workspaceID, q, "interval", "tz")
	if err != nil {
		return store.Filter{}, "", nil, err
	}
	iv, zone, err := parseTimeline(q.Get("interval"), q.Get("tz"), len(q["interval"]), len(q["tz"]))
	if err != nil {
		return store.Filter{}, "", nil, err
	}
	return f.Filter, widen(iv, f.Since, f.Until, now), zone, nil
}

// widen returns iv, or the finest wider interval, such that [since, until)
// holds at most MaxBuckets buckets, its ends taken within [now - maxSpan,
// now + event.MaxFutureSkew] (open ends are those bounds): without since,
// hours are answered as hours.
func widen(iv store.Interval, since, until, now time.Time) store.Interval {
	lo, hi := now.Add(-maxSpan), now.Add(event.MaxFutureSkew)
	if since.After(lo) {
		lo = since
	}
	if !until.IsZero() && until.Before(hi) {
		hi = until
	}
	span := hi.Sub(lo)
	for _, w := range widths[slices.Index(widths, iv):] {
		iv = w
		if span/w.Duration() <= MaxBuckets {
			break
		}
	}
	return iv
}

func parseTimeline(interval, tz string, nInterval, nTZ int) (store.Interval, *time.Location, error) {
	if nInterval > 1 {
		return "", nil, httpserver.BadRequest("interval", "may be given once")
	}
	if nTZ > 1 {
		return "", nil, httpserver.BadRequest("tz", "may be given once")
	}
	iv := store.Interval(interval)
	switch {
	case nInterval == 0:
		iv = store.Hour
	case slices.Contains(widths, iv):
	default: // an empty interval= included: the document's enum has no ""
		return "", nil, httpserver.BadRequest("interval", `must be "minute", "5m", "hour" or "day"`)
	}
	if nTZ == 0 {
		return iv, time.UTC, nil
	}
	if !zones.Known(tz) {
		return "", nil, httpserver.BadRequest("tz", "must be a time zone name of the IANA database, such as Europe/Paris (the OpenAPI document lists them)")
	}
	zone, err := zones.Load(tz)
	if err != nil {
		return "", nil, fmt.Errorf("timeline: %w", err) // every known name loads (see the zones tests)
	}
	return iv, zone, nil
}
