package main

// The -layouts mode: every shape of issue 19 through the API on the old
// events layout and, in the same run, on migration 5's, with what each
// layout costs the writer per event.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// layoutShape is one request of the list: a page of events (the
// first, or the one after four cursor steps) or the facets.
type layoutShape struct {
	name   string
	facets bool
	bare   bool // free text without qualifiers: its own budget
	params url.Values
}

// layoutShapes are issue 19's shapes. The generated data has 200 actors
// (usr_0..usr_199), 5,000 resources (res_0..res_4999) and one event name
// 80 times rarer than the others.
func layoutShapes() []layoutShape {
	return []layoutShape{
		{name: "(none)", params: url.Values{}},
		{name: "event=Source Created", params: url.Values{"event": {"Source Created"}}},
		{name: "event=Destination Deleted (rare)", params: url.Values{"event": {"Destination Deleted"}}},
		{name: "actor_id=usr_17", params: url.Values{"actor_id": {"usr_17"}}},
		{name: "resource_id=res_123", params: url.Values{"resource_id": {"res_123"}}},
		{name: "actor_type=access_token", params: url.Values{"actor_type": {"access_token"}}},
		{name: "since=now-7d", params: url.Values{"since": {time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)}}},
		{name: `q=actor:"user 17" category:Warehouses`, params: url.Values{"q": {`actor:"user 17" category:Warehouses`}}},
		{name: "q=snowflake category:Warehouses", params: url.Values{"q": {"snowflake category:Warehouses"}}},
		{name: "facets", facets: true, params: url.Values{}},
		{name: "facets event=Destination Deleted", facets: true, params: url.Values{"event": {"Destination Deleted"}}},
		{name: "q=res_4999 (bare word, rare)", bare: true, params: url.Values{"q": {"res_4999"}}},
	}
}

// budget is issue 19's p99 goal for a shape at this many events, in ms.
func budget(events int, ws, big string, sh layoutShape) float64 {
	huge := events > 20_000_000
	switch {
	case sh.bare && huge:
		return 2000
	case sh.bare:
		return 500
	case sh.facets && huge && ws == big:
		return 500
	case huge:
		return 150
	}
	return 50
}

// timing is a shape's p50 and p99 on one layout, by workspace and page.
type timing map[string]percentiles

func timingKey(ws, shape string, steps int) string { return fmt.Sprintf("%s|%s|%d", ws, shape, steps) }

// compareLayouts runs the -layouts mode on a database load filled in the
// old layout.
func compareLayouts(ctx context.Context, o options, srv drillkit.Servers, conn driver.Conn, secret string) error {
	b := &bench{o: o, srv: srv, conn: conn, table: o.database + "." + migrations.Table,
		big: "ws_0", median: fmt.Sprintf("ws_%d", o.workspaces/2)}
	sizes, err := b.describe(ctx)
	if err != nil {
		return err
	}
	tok, err := auth.Mint([]byte(secret), "usr_bench", "Bench", "bench@example.com",
		map[string]string{b.big: "owner", b.median: "owner"}, 4*time.Hour, time.Now())
	if err != nil {
		return err
	}
	fmt.Println("\nwriter cost of the old layout:")
	if err := printCosts(ctx, conn, o.database); err != nil {
		return err
	}
	old, err := timeLayout(o, o.oldAPIBin, srv, secret, tok, b)
	if err != nil {
		return fmt.Errorf("old layout: %w", err)
	}
	if err := moveLayout(ctx, conn, o); err != nil {
		return err
	}
	fmt.Println("\nwriter cost of the events layout (migration 5):")
	if err := printCosts(ctx, conn, o.database); err != nil {
		return err
	}
	if err := insertCost(ctx, conn, o, srv); err != nil {
		return err
	}
	cur, err := timeLayout(o, o.apiBin, srv, secret, tok, b)
	if err != nil {
		return fmt.Errorf("events layout: %w", err)
	}
	printLayouts(o, b, sizes, old, cur)
	return nil
}

// moveLayout moves the database to the events layout as a deployment does
// and prints how long it took.
func moveLayout(ctx context.Context, conn driver.Conn, o options) error {
	schema := migrations.Options{Database: o.database, RetentionDays: 90}
	t0 := time.Now()
	if _, err := migrations.Apply(ctx, conn, schema); err != nil {
		return err
	}
	swapped := time.Since(t0)
	moved, err := migrations.MoveLegacy(ctx, conn, schema, time.Now().UTC().Add(-90*24*time.Hour).Format("20060102"))
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("\nmoved to the events layout: swap %.2f s, %d days copied in %.1f s in all (%.0f events/s)\n",
		swapped.Seconds(), len(moved), secs, float64(o.events)/secs)
	return nil
}

// timeLayout starts the API binary bin and times every shape through it.
func timeLayout(o options, bin string, srv drillkit.Servers, secret, tok string, b *bench) (timing, error) {
	proc, base, err := startAPI(o, bin, srv, secret)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = proc.Process.Signal(syscall.SIGTERM)
		_ = proc.Wait()
	}()
	out := timing{}
	for _, ws := range []string{b.big, b.median} {
		for _, sh := range layoutShapes() {
			for _, steps := range []int{0, 4} {
				if (sh.facets && steps > 0) || !o.only.MatchString(ws+" "+sh.name) {
					continue
				}
				p, err := timeShape(base, tok, ws, sh, steps, o.requests)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", ws, sh.name, err)
				}
				out[timingKey(ws, sh.name, steps)] = p
			}
		}
	}
	return out, nil
}

// timeShape requests the shape's page (after steps cursor steps) n+2
// times and returns the percentiles of the last n, until the body is read.
func timeShape(base, tok, ws string, sh layoutShape, steps, n int) (percentiles, error) {
	path := base + "/v1/workspaces/" + ws + "/audit-events"
	if sh.facets {
		path += "/facets"
	}
	params := url.Values{}
	for k, v := range sh.params {
		params[k] = v
	}
	for range steps {
		var page struct {
			NextCursor *string `json:"next_cursor"`
		}
		if _, err := get(path+"?"+params.Encode(), tok, &page); err != nil {
			return percentiles{}, err
		}
		if page.NextCursor == nil {
			break // fewer pages than steps: time the last
		}
		params.Set("cursor", *page.NextCursor)
	}
	u := path + "?" + params.Encode()
	var ms []float64
	for i := range n + 2 {
		d, err := get(u, tok, nil)
		if err != nil {
			return percentiles{}, err
		}
		if i >= 2 {
			ms = append(ms, float64(d.Microseconds())/1000)
		}
	}
	return pct(ms), nil
}

// get requests u and returns how long it took; into, when set, receives
// the JSON body.
func get(u, tok string, into any) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d %v %s", u, resp.StatusCode, err, body)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			return 0, err
		}
	}
	return d, nil
}

// printLayouts prints the old and the new layout's figures side by side
// with the budget.
func printLayouts(o options, b *bench, sizes map[string]uint64, old, cur timing) {
	fmt.Printf("\n%d events, %d requests per shape; ms through the API (old layout = day partitions, new = migration 5)\n", o.events, o.requests)
	fmt.Printf("%-14s %-38s %-7s %8s %8s %8s %8s %8s  %s\n", "workspace", "shape", "page", "old p50", "old p99", "new p50", "new p99", "budget", "new p99 <= budget")
	for _, ws := range []string{b.big, b.median} {
		for _, sh := range layoutShapes() {
			for _, steps := range []int{0, 4} {
				k := timingKey(ws, sh.name, steps)
				n, ok := cur[k]
				if !ok {
					continue
				}
				page := "first"
				if steps > 0 {
					page = "5th"
				}
				limit := budget(o.events, ws, b.big, sh)
				fmt.Printf("%-14s %-38s %-7s %8.1f %8.1f %8.1f %8.1f %8.0f  %s\n", fmt.Sprintf("%s(%d)", ws, sizes[ws]), sh.name, page,
					old[k].p50, old[k].p99, n.p50, n.p99, limit, strings.ToLower(okText(n.p99 <= limit)))
			}
		}
	}
}
