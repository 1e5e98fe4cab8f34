package main

// Timing a first page both ways, alternating: through the API, and the
// very statements the store runs through clickhouse-client --time.

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// shape is one kind of first-page request.
type shape struct {
	name   string
	params url.Values
}

var shapes = []shape{
	{"(none)", url.Values{}},
	{"event=Source Created", url.Values{"event": {"Source Created"}}},
	{"actor_type=access_token", url.Values{"actor_type": {"access_token"}}},
	{"event=Destination Deleted (rare)", url.Values{"event": {"Destination Deleted"}}},
	{`q=actor:"user 17"`, url.Values{"q": {`actor:"user 17"`}}},
	{"q=snowflake category:Warehouses", url.Values{"q": {"snowflake category:Warehouses"}}},
	{"since=now-7d", url.Values{"since": {time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)}}},
}

type percentiles struct{ p50, p99 float64 }

func pct(ms []float64) percentiles {
	slices.Sort(ms)
	at := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	return percentiles{p50: at(0.50), p99: at(0.99)}
}

type result struct {
	api, sql, base percentiles
	// cold and baseCold are the first request of a timeline's shape to
	// each API, in ms (before its caches hold that shape).
	cold, baseCold float64
}

// recorder captures the statements the store runs.
type recorder struct {
	conn driver.Conn
	sqls []string
}

func (r *recorder) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	// The store's look-up of the old-layout table runs once per process.
	if !strings.Contains(q, "system.tables") {
		r.sqls = append(r.sqls, inline(q, args))
	}
	return r.conn.Query(ctx, q, args...)
}

// inline replaces each ? of q with its argument as a SQL literal.
func inline(q string, args []any) string {
	var b strings.Builder
	i := 0
	for _, c := range q {
		if c == '?' && i < len(args) {
			switch v := args[i].(type) {
			case string:
				b.WriteString(quote(v))
			default:
				fmt.Fprint(&b, v)
			}
			i++
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func measure(ctx context.Context, o options, conn driver.Conn, srv drillkit.Servers, base, tok, ws string, sh shape) (result, error) {
	// The statements the API runs for this page, as the store builds them.
	f, after, limit, err := api.ParseList(ws, sh.params)
	if err != nil {
		return result{}, err
	}
	rec := &recorder{conn: conn}
	if _, err := store.New(rec, o.database, 90, time.Now).List(ctx, f, after, limit); err != nil {
		return result{}, err
	}
	// Rounds alternate between the two ways, so both see the same machine.
	const rounds, warm = 40, 2
	per := max(o.requests/rounds, 1)
	var sqlMs, apiMs []float64
	for range rounds {
		ms, err := retry(func() ([]float64, error) { return timeSQL(o, srv, rec.sqls, per, warm) })
		if err != nil {
			return result{}, err
		}
		sqlMs = append(sqlMs, ms...)
		if ms, err = retry(func() ([]float64, error) { return timeAPI(base, tok, ws, sh, per, warm) }); err != nil {
			return result{}, err
		}
		apiMs = append(apiMs, ms...)
	}
	return result{api: pct(apiMs), sql: pct(sqlMs)}, nil
}

// retry runs a round again (up to 3 times, a second apart) when it failed,
// as when ClickHouse restarts under a fault drill on a shared machine; the
// failed round's times are dropped and the retry is reported.
func retry(round func() ([]float64, error)) ([]float64, error) {
	for i := 0; ; i++ {
		ms, err := round()
		if err == nil || i == 3 {
			return ms, err
		}
		fmt.Fprintf(os.Stderr, "round failed, retrying: %v\n", err)
		time.Sleep(time.Second)
	}
}

// timeSQL runs sqls n+warm times in one clickhouse-client session and
// returns the last n times of the whole sequence, in ms.
func timeSQL(o options, srv drillkit.Servers, sqls []string, n, warm int) ([]float64, error) {
	var script bytes.Buffer
	for range n + warm {
		for _, s := range sqls {
			script.WriteString(s + ";\n")
		}
	}
	cmd := clientCmd(o, srv, "--multiquery", "--time", "--format", "Null")
	cmd.Stdin = &script
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("clickhouse-client: %v: %s", err, stderr.String())
	}
	var times []float64
	for _, line := range strings.Fields(stderr.String()) {
		s, err := strconv.ParseFloat(line, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse-client said %q", stderr.String())
		}
		times = append(times, s*1000)
	}
	if len(times) != (n+warm)*len(sqls) {
		return nil, fmt.Errorf("clickhouse-client timed %d statements, want %d", len(times), (n+warm)*len(sqls))
	}
	var ms []float64
	for i := warm * len(sqls); i < len(times); i += len(sqls) {
		sum := 0.0
		for _, t := range times[i : i+len(sqls)] {
			sum += t
		}
		ms = append(ms, sum)
	}
	return ms, nil
}

// timeAPI requests the first page n+warm times and returns the last n
// times (until the body is read), in ms.
func timeAPI(base, tok, ws string, sh shape, n, warm int) ([]float64, error) {
	return timeGet(base+"/v1/workspaces/"+ws+"/audit-events?"+sh.params.Encode(), tok, n, warm)
}
