// Package main is the apibench command: it measures the read API against
// the same SQL run with clickhouse-client, side by side, on a dedicated
// ClickHouse database of generated events (1,000 workspaces, skewed: the
// largest holds about a tenth of all events), and the CSV export's rate and
// the API's memory.
//
//	apibench -api-bin .local/bin/api [-events 2000000] [-full] [-requests 200] [-only REGEXP] [-no-export] [-drop]
//
// It loads the events with INSERT ... SELECT FROM system.numbers (one
// statement per day of the window, so parts need no merging), unless the
// database already holds exactly that many; starts the API binary on a free
// port; then for each query shape and workspace times the first page
// through the API (HTTP, keep-alive) and the very statements the store runs
// for that page through clickhouse-client --time (its own measure, without
// process start-up), and finally streams the largest workspace's CSV export
// while sampling the API's resident memory. scripts/bench-api runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const exportTopic = "bench-api-exports"

type options struct {
	events, workspaces, requests int
	database, apiBin, client     string
	drop, noExport               bool
	only                         *regexp.Regexp
}

func main() {
	var o options
	full := false
	flag.IntVar(&o.events, "events", 2_000_000, "events to load")
	flag.BoolVar(&full, "full", false, "load 20,000,000 events (the issue's figure)")
	flag.IntVar(&o.workspaces, "workspaces", 1000, "workspaces")
	flag.IntVar(&o.requests, "requests", 200, "timed requests per query shape and workspace, each way")
	flag.StringVar(&o.database, "database", "bench_api", "ClickHouse database for the generated events (reused when it holds the same count)")
	flag.StringVar(&o.apiBin, "api-bin", "", "the API binary to start (go build ./query-api/cmd/api)")
	flag.StringVar(&o.client, "client", "clickhouse-client", "clickhouse-client command")
	flag.BoolVar(&o.drop, "drop", false, "drop the database at the end")
	flag.BoolVar(&o.noExport, "no-export", false, "skip the CSV export")
	only := flag.String("only", "", "time only the first-page shapes whose \"workspace filter\" matches this regular expression")
	flag.Parse()
	var err error
	if o.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintln(os.Stderr, "apibench: -only:", err)
		os.Exit(2)
	}
	if full {
		o.events = 20_000_000
	}
	if o.apiBin == "" || o.events < o.workspaces || o.requests < 10 {
		fmt.Fprintln(os.Stderr, "apibench: -api-bin is required; -events must be at least -workspaces; -requests at least 10")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	env := config.FromOS()
	chc := chconn.FromEnv(env)
	chc.Database = o.database
	kc := kafkaconn.FromEnv(env, exportTopic, 1)
	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	table := o.database + "." + migrations.Table
	if err := load(ctx, conn, chc, o); err != nil {
		return err
	}
	if o.drop {
		defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.database) }()
	}

	// The export is recorded on a topic of its own.
	cl, err := kgo.NewClient(kc.Options()...)
	if err != nil {
		return err
	}
	err = kafkaconn.EnsureTopics(ctx, cl, 1, nil, exportTopic)
	cl.Close()
	if err != nil {
		return fmt.Errorf("kafka (scripts/services up): %w", err)
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	jwtSecret := hex.EncodeToString(secret)
	apiProc, base, err := startAPI(o, chc, kc, jwtSecret)
	if err != nil {
		return err
	}
	defer func() {
		_ = apiProc.Process.Signal(syscall.SIGTERM)
		_ = apiProc.Wait()
	}()

	var parts uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active",
		o.database, migrations.Table).Scan(&parts); err != nil {
		return err
	}
	fmt.Printf("%s: %d active parts; ClickHouse %s\n", table, parts, serverVersion(ctx, conn))
	big, median := "ws_0", fmt.Sprintf("ws_%d", o.workspaces/2)
	sizes := map[string]uint64{}
	for _, ws := range []string{big, median} {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" WHERE workspace_id = ? AND timestamp_ns >= ?",
			ws, time.Now().Add(-90*24*time.Hour).UnixNano()).Scan(&n); err != nil {
			return err
		}
		sizes[ws] = n
	}
	tok, err := auth.Mint([]byte(jwtSecret), "usr_bench", "Bench", "bench@example.com",
		map[string]string{big: "owner", median: "owner"}, 2*time.Hour, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("\nfirst page (limit 50), %d requests each way; ms\n", o.requests)
	fmt.Printf("%-9s %-34s %8s %8s %8s %8s  %s\n", "workspace", "filter", "api p50", "api p99", "sql p50", "sql p99", "api p99 <= 1.5 x sql p99 + 10 ms")
	failed := false
	for _, ws := range []string{big, median} {
		for _, sh := range shapes {
			if !o.only.MatchString(ws + " " + sh.name) {
				continue
			}
			r, err := measure(ctx, o, conn, chc, base, tok, ws, sh)
			if err != nil {
				return fmt.Errorf("%s %s: %w", ws, sh.name, err)
			}
			ok := r.api.p99 <= 1.5*r.sql.p99+10
			failed = failed || !ok
			fmt.Printf("%-9s %-34s %8.1f %8.1f %8.1f %8.1f  %s\n", fmt.Sprintf("%s(%d)", ws, sizes[ws]), sh.name,
				r.api.p50, r.api.p99, r.sql.p50, r.sql.p99, map[bool]string{true: "ok", false: "FAIL"}[ok])
		}
	}

	if o.noExport {
		if failed {
			return errors.New("a target was missed (see above)")
		}
		return nil
	}
	// Events keep leaving the window while the benchmark runs: count what
	// the export may hold just before and just after it.
	windowCount := func() (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" WHERE workspace_id = ? AND timestamp_ns >= ?",
			big, time.Now().Add(-90*24*time.Hour).UnixNano()).Scan(&n)
		return n, err
	}
	before, err := windowCount()
	if err != nil {
		return err
	}
	rows, secs, peak, err := export(base, tok, big, apiProc.Process.Pid)
	if err != nil {
		return err
	}
	after, err := windowCount()
	if err != nil {
		return err
	}
	hwm := procStatus(apiProc.Process.Pid, "VmHWM")
	rate := float64(rows) / secs
	fmt.Printf("\nCSV export of %s: %d rows in %.1f s = %.0f rows/s (want >= 100000: %s); API RSS peak during export %.1f MB, VmHWM %.1f MB (want < 100: %s)\n",
		big, rows, secs, rate, okText(rate >= 100_000), peak, hwm, okText(hwm < 100))
	if rows < int(after) || rows > int(before) {
		return fmt.Errorf("export returned %d rows, the window held %d to %d", rows, after, before)
	}
	if failed || rate < 100_000 || hwm >= 100 {
		return errors.New("a target was missed (see above)")
	}
	return nil
}

func serverVersion(ctx context.Context, conn driver.Conn) string {
	v, err := migrations.ServerVersion(ctx, conn)
	if err != nil {
		return "?"
	}
	return v.String()
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

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

// eventNames are the generated names (categories and resource types come
// from the catalogue); the last is rare.
var eventNames = []string{
	"Source Created", "Source Modified", "Source Deleted", "Warehouses Disabled", "Warehouses Enabled",
	"Warehouses Modified", "Destination Created", "Destination Modified", "Audience Created",
	"Audience Modified", "Tracking Plan Modified", "Workspace Modified", "Destination Deleted",
}

// load fills the database with o.events events unless it holds exactly
// that many already.
func load(ctx context.Context, conn driver.Conn, chc chconn.Config, o options) error {
	table := o.database + "." + migrations.Table
	if _, err := migrations.Apply(ctx, conn, migrations.Options{Database: o.database, RetentionDays: 90}); err != nil {
		return err
	}
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&have); err != nil {
		return err
	}
	if have == uint64(o.events) {
		fmt.Printf("reusing %d events in %s\n", have, table)
		return nil
	}
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+o.database); err != nil {
		return err
	}
	if _, err := migrations.Apply(ctx, conn, migrations.Options{Database: o.database, RetentionDays: 90}); err != nil {
		return err
	}
	var names, cats, types []string
	for i, name := range eventNames {
		e, ok := catalogue.Lookup(name)
		if !ok {
			return fmt.Errorf("%q is not in the catalogue", name)
		}
		n := 1
		if i < len(eventNames)-1 {
			n = 80 // the last name is 80 times rarer than the others
		}
		for range n {
			names, cats, types = append(names, quote(e.Name)), append(cats, quote(e.Category)), append(types, quote(e.ResourceType))
		}
	}
	arr := func(v []string) string { return "[" + strings.Join(v, ",") + "]" }
	start := time.Now()
	now := time.Now().Add(-time.Minute).UnixNano()
	const day = int64(24 * time.Hour)
	perDay := o.events / 90
	for d := range 90 {
		n := perDay
		if d == 89 {
			n = o.events - 89*perDay
		}
		// Within a day: uniform times; workspace floor(W * u^3) with u
		// uniform, so ws_0 gets ~10% and the median workspace ~0.05%.
		q := fmt.Sprintf(`INSERT INTO %[1]s (%[2]s)
SELECT concat('ws_', toString(w)), toDateTime(intDiv(ts, 1000000000)), ts, concat('evt_', lower(hex(sipHash64(n)))),
    arrayElement(%[3]s, k), arrayElement(%[4]s, k),
    arrayElement(['user','user','user','user','user','user','user','access_token','access_token','system'], n %% 10 + 1),
    concat('usr_', toString(a)), concat('User ', toString(a)), concat('user', toString(a), '@example.com'),
    arrayElement(%[5]s, k), concat('res_', toString(n %% 5000)),
    arrayElement(['Snowflake prod', 'BigQuery analytics', 'Web site', 'iOS app', 'Redshift staging'], n %% 5 + 1),
    '{"enabled":{"new":false,"old":true},"name":{"new":"after","old":"before"}}',
    IPv4NumToString(rand(3)), 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    concat('req_', toString(n)), '{"plan":"business","source":"bench"}',
    toDateTime(intDiv(ts, 1000000000)), ts, concat('legacy-', lower(hex(sipHash64(n %% 3)))), 'loadgen'
FROM (
    SELECT number + %[6]d AS n,
        toUInt32(floor(pow(rand(1) / 4294967296.0, 3) * %[7]d)) AS w,
        %[8]d - toInt64(rand64(2) %% %[9]d) AS ts,
        rand(4) %% %[10]d + 1 AS k,
        rand(5) %% 200 AS a
    FROM system.numbers LIMIT %[11]d
)`, table, strings.Join(migrations.InsertColumns, ", "), arr(names), arr(cats), arr(types),
			d*perDay, o.workspaces, now-int64(d)*day, day, len(names), n)
		if out, err := clientCmd(o, chc, "--query", q).CombinedOutput(); err != nil {
			return fmt.Errorf("load day %d: %v: %s", d, err, out)
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("loaded %d events into %s in %.1f s (%.0f rows/s)\n", o.events, table, secs, float64(o.events)/secs)
	return nil
}

func clientCmd(o options, chc chconn.Config, args ...string) *exec.Cmd {
	host, port, _ := net.SplitHostPort(chc.Addr)
	base := []string{"--host", host, "--port", port, "--user", chc.Username}
	if chc.Password != "" {
		base = append(base, "--password", chc.Password)
	}
	return exec.Command(o.client, append(base, args...)...)
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func startAPI(o options, chc chconn.Config, kc kafkaconn.Config, secret string) (*exec.Cmd, string, error) {
	addr := proctest.FreeAddr()
	cmd := exec.Command(o.apiBin)
	cmd.Env = append(os.Environ(),
		"AUDITTRAIL_API_ADDR="+addr, "AUDITTRAIL_CLICKHOUSE_DATABASE="+o.database, "AUDITTRAIL_CLICKHOUSE_ADDR="+chc.Addr,
		"AUDITTRAIL_JWT_SECRET="+secret, "AUDITTRAIL_KAFKA_TOPIC="+exportTopic,
		"AUDITTRAIL_KAFKA_BROKERS="+strings.Join(kc.Brokers, ","))
	logf, err := os.CreateTemp("", "apibench-api-*.log")
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", o.apiBin, err)
	}
	if err := proctest.WaitReady(context.Background(), addr, 60*time.Second, nil); err != nil {
		_ = cmd.Process.Kill()
		return nil, "", fmt.Errorf("the API did not get ready (%w); see %s", err, logf.Name())
	}
	fmt.Printf("API pid %d on %s (log %s)\n", cmd.Process.Pid, addr, logf.Name())
	return cmd, "http://" + addr, nil
}

type percentiles struct{ p50, p99 float64 }

func pct(ms []float64) percentiles {
	slices.Sort(ms)
	at := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	return percentiles{p50: at(0.50), p99: at(0.99)}
}

type result struct{ api, sql percentiles }

// recorder captures the statements the store runs.
type recorder struct {
	conn driver.Conn
	sqls []string
}

func (r *recorder) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	r.sqls = append(r.sqls, inline(q, args))
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

func measure(ctx context.Context, o options, conn driver.Conn, chc chconn.Config, base, tok, ws string, sh shape) (result, error) {
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
		ms, err := retry(func() ([]float64, error) { return timeSQL(o, chc, rec.sqls, per, warm) })
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
func timeSQL(o options, chc chconn.Config, sqls []string, n, warm int) ([]float64, error) {
	var script bytes.Buffer
	for range n + warm {
		for _, s := range sqls {
			script.WriteString(s + ";\n")
		}
	}
	cmd := clientCmd(o, chc, "--multiquery", "--time", "--format", "Null")
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
	u := base + "/v1/workspaces/" + ws + "/audit-events?" + sh.params.Encode()
	var ms []float64
	for i := range n + warm {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		if i >= warm {
			ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	return ms, nil
}

// export streams ws's CSV export and returns its data rows, the seconds it
// took and the API's highest resident memory (MB) seen while it ran.
func export(base, tok, ws string, pid int) (int, float64, float64, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/workspaces/"+ws+"/audit-events.csv", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	stop := make(chan struct{})
	peak := make(chan float64)
	go func() {
		hi := 0.0
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				hi = max(hi, procStatus(pid, "VmRSS"))
			case <-stop:
				peak <- hi
				return
			}
		}
	}()
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		close(stop)
		<-peak
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	lines := 0
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		n, err := br.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			break
		}
		if err != nil {
			close(stop)
			<-peak
			return 0, 0, 0, err
		}
	}
	secs := time.Since(t0).Seconds()
	close(stop)
	p := <-peak
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("export: status %d", resp.StatusCode)
	}
	return lines - 1, secs, p, nil
}

// procStatus returns a memory field of /proc/pid/status in MB.
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
