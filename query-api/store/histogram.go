package store

import (
	"context"
	"fmt"
	"time"
)

// Interval is the width of a histogram's buckets.
type Interval string

// Intervals of Histogram. Hour and day buckets start at the zone's whole
// hours and midnights; minutes and 5 minutes are the same in every zone
// (offsets are whole quarter hours).
const (
	Minute      Interval = "minute"
	FiveMinutes Interval = "5m"
	Hour        Interval = "hour"
	Day         Interval = "day"
)

// Duration is the interval's length (a day's length varies across a
// daylight-saving change; this is its usual 24 h, for bounds).
func (iv Interval) Duration() time.Duration {
	switch iv {
	case Minute:
		return time.Minute
	case FiveMinutes:
		return 5 * time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// bucketExpr is the ClickHouse expression of a row's bucket start; zone is
// an IANA name checked by the caller (it is quoted as a literal, as the
// functions need a constant).
func (iv Interval) bucketExpr(zone string) (string, error) {
	switch iv {
	case Minute:
		return "toStartOfMinute(timestamp)", nil
	case FiveMinutes:
		return "toStartOfFiveMinute(timestamp)", nil
	case Hour:
		return fmt.Sprintf("toStartOfHour(timestamp, '%s')", zone), nil
	case Day:
		return fmt.Sprintf("toStartOfDay(timestamp, '%s')", zone), nil
	}
	return "", fmt.Errorf("unknown interval %q", iv)
}

// Bucket is one bar of a histogram: how many events lie in [Start, the
// next bucket's start).
type Bucket struct {
	Start time.Time `json:"start"`
	Count uint64    `json:"count"`
}

// Histogram counts the events matching f (in the retention window) per
// interval, in zone (an IANA name; hour and day buckets follow it), each
// event once however many unmerged copies it has. Empty buckets are left
// out; the buckets come oldest first.
func (s *Store) Histogram(ctx context.Context, f Filter, iv Interval, zone *time.Location) ([]Bucket, error) {
	out := []Bucket{}
	sp, ok := s.span(f)
	if !ok {
		return out, nil
	}
	expr, err := iv.bucketExpr(zone.String())
	if err != nil {
		return nil, err
	}
	var q query
	q.bounds(f.WorkspaceID, sp)
	q.filters(f)
	cond, args := q.clauses()
	sql := fmt.Sprintf(`SELECT toUnixTimestamp(b) AS start, count() FROM (
    SELECT %s AS b FROM %s
    %s
    LIMIT 1 BY timestamp_ns, id
) GROUP BY b ORDER BY b`, expr, s.table, cond)
	err = s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var start uint32
		var b Bucket
		if err := scan(&start, &b.Count); err != nil {
			return err
		}
		b.Start = time.Unix(int64(start), 0).UTC()
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	return out, nil
}
