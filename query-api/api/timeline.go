package api

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/zones"
)

// MaxBuckets bounds the buckets a timeline may span: minutes over about
// ten weeks, 5 minutes over about a year, hours and days over any window
// (only buckets with events are answered).
const MaxBuckets = 100000

// maxSpan is the span a timeline without since is taken to cover (the
// longest retention), for MaxBuckets.
const maxSpan = 3650 * 24 * time.Hour

// TimelineResponse is the body of GET .../audit-events/timeline.
type TimelineResponse struct {
	Interval store.Interval `json:"interval"`
	Buckets  []store.Bucket `json:"buckets"`
}

// timeline counts the matching events per interval (minute, 5m, hour or
// day; hour by default) of the zone tz's clock (a name of zones.Names; UTC
// by default), computed in ClickHouse.
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
	span := maxSpan
	if !f.Since.IsZero() {
		end := now
		if !f.Until.IsZero() {
			end = f.Until
		}
		span = end.Sub(f.Since)
	}
	if span/iv.Duration() > MaxBuckets {
		return store.Filter{}, "", nil, httpserver.BadRequest("interval", fmt.Sprintf("too fine for the time range: at most %d buckets; choose a coarser interval or a later since", MaxBuckets))
	}
	return f.Filter, iv, zone, nil
}

func parseTimeline(interval, tz string, nInterval, nTZ int) (store.Interval, *time.Location, error) {
	if nInterval > 1 {
		return "", nil, httpserver.BadRequest("interval", "may be given once")
	}
	if nTZ > 1 {
		return "", nil, httpserver.BadRequest("tz", "may be given once")
	}
	iv := store.Interval(interval)
	switch iv {
	case "":
		iv = store.Hour
	case store.Minute, store.FiveMinutes, store.Hour, store.Day:
	default:
		return "", nil, httpserver.BadRequest("interval", `must be "minute", "5m", "hour" or "day"`)
	}
	if tz == "" {
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
