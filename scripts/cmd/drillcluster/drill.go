package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// drill is one run: its topics, groups, database and processes.
type drill struct {
	o                            options
	cl                           cluster
	sfx                          string
	topic, dlq, settings, fwdDLQ string
	writerGroup, fwdGroup, db    string
	logDir                       string

	kcl  *kgo.Client
	adm  *kadm.Client
	ch   driver.Conn
	sink *sink
	load *load

	writers    []*proc
	forwarders []*proc
	api        *proc
	ingest     *proc
	token      string
	enabled    map[string]bool // workspaces with forwarding on
	watch      *storeWatch
	victimRows int // rows the killed writer had inserted before the kill
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "drill-cluster: "+format+"\n", args...)
}

func runDrill(ctx context.Context, o options) (rep *report, err error) {
	start := time.Now()
	rep = &report{Mode: "default", Rate: o.rate, Load: o.load, Started: start.UTC()}
	if o.quick {
		rep.Mode = "quick"
	}
	defer func() {
		rep.Took = time.Since(start)
		if err != nil && rep.Err == "" {
			rep.Err = err.Error()
		}
	}()
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	d := &drill{o: o, cl: cluster{root: o.root}, sfx: sfx,
		topic: "drillc-events-" + sfx, dlq: "drillc-dlq-" + sfx, settings: "drillc-settings-" + sfx,
		fwdDLQ: "drillc-fdlq-" + sfx, writerGroup: "drillc-writer-" + sfx, fwdGroup: "drillc-forwarder-" + sfx,
		db: "drillc_" + sfx, enabled: map[string]bool{}}
	if d.logDir, err = os.MkdirTemp("", "audittrail-drill-cluster-"); err != nil {
		return rep, err
	}
	defer func() {
		if err != nil || !rep.ok() {
			d.printLogs()
			logf("logs kept in %s", d.logDir)
			return
		}
		os.RemoveAll(d.logDir)
	}()

	// The cluster starts while the binaries build.
	if err := d.cl.install(); err != nil {
		return rep, err
	}
	before := d.cl.running()
	binDir := filepath.Join(d.logDir, "bin")
	var buildErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, buildErr = proctest.Build(binDir, "consumers/cmd/writer", "consumers/cmd/forwarder",
			"query-api/cmd/api", "producers/cmd/ingest")
	})
	startErr := d.cl.start()
	wg.Wait()
	defer d.cl.stopStarted(before)
	if err := errors.Join(startErr, buildErr); err != nil {
		return rep, err
	}
	rep.ClusterReady = time.Since(start)
	logf("cluster ready and binaries built in %s", rep.ClusterReady.Round(100*time.Millisecond))

	defer d.cleanup()
	if err := d.setUp(ctx, binDir); err != nil {
		return rep, err
	}
	if err := d.enableForwarding(ctx); err != nil {
		return rep, err
	}
	if err := d.exercise(ctx, rep); err != nil {
		return rep, err
	}
	return rep, d.check(ctx, rep)
}

// setUp creates the topics, starts the sink and every process, and waits
// until they are ready.
func (d *drill) setUp(ctx context.Context, binDir string) error {
	var err error
	d.kcl, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("audittrail-drill-cluster"))
	if err != nil {
		return err
	}
	d.adm = kadm.NewClient(d.kcl)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, t := range []struct {
		name       string
		partitions int32
		configs    map[string]*string
	}{{d.topic, int32(d.o.partitions), nil}, {d.dlq, 1, nil}, {d.settings, 1, kvtopic.TopicConfigs()}, {d.fwdDLQ, 1, nil}} {
		if err := createTopic(tctx, d.adm, t.name, t.partitions, t.configs); err != nil {
			return err
		}
	}
	d.ch, err = chconn.Open(tctx, chconn.Config{Addr: "127.0.0.1:9000", Database: "default", Username: "default",
		DialTimeout: 2 * time.Second, ReadTimeout: time.Minute, MaxOpenConns: 4})
	if err != nil {
		return err
	}
	if d.sink, err = startSink(); err != nil {
		return err
	}

	common := []string{
		"AUDITTRAIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"AUDITTRAIL_KAFKA_TOPIC=" + d.topic,
		fmt.Sprintf("AUDITTRAIL_KAFKA_PARTITIONS=%d", d.o.partitions),
		"AUDITTRAIL_CLICKHOUSE_ADDR=127.0.0.1:9000",
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + d.db,
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + d.dlq,
		"AUDITTRAIL_WRITER_GROUP=" + d.writerGroup,
		"AUDITTRAIL_WRITER_SESSION_TIMEOUT=" + sessionTimeout.String(),
		"AUDITTRAIL_SETTINGS_TOPIC=" + d.settings,
		"AUDITTRAIL_FORWARDER_DLQ_TOPIC=" + d.fwdDLQ,
		"AUDITTRAIL_FORWARDER_GROUP=" + d.fwdGroup,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
		"AUDITTRAIL_JWT_SECRET=" + jwtSecret,
		// The sink is a loopback address: the API accepts it and the
		// forwarders reach it only through its exact ip:port.
		"AUDITTRAIL_FORWARD_ALLOWED_TARGETS=" + strings.TrimPrefix(d.sink.url, "http://"),
	}
	with := func(extra ...string) []string { return append(slices.Clone(common), extra...) }
	for i := 1; i <= writers; i++ {
		addr := proctest.FreeAddr()
		d.writers = append(d.writers, newProc(fmt.Sprintf("writer-%d", i), filepath.Join(binDir, "writer"), addr, d.logDir,
			with("AUDITTRAIL_WRITER_ADDR="+addr, fmt.Sprintf("AUDITTRAIL_WRITER_INSTANCE_ID=drill-writer-%d", i))))
	}
	for i := 1; i <= forwarders; i++ {
		addr := proctest.FreeAddr()
		d.forwarders = append(d.forwarders, newProc(fmt.Sprintf("forwarder-%d", i), filepath.Join(binDir, "forwarder"), addr,
			d.logDir, with("AUDITTRAIL_FORWARDER_ADDR="+addr)))
	}
	addr := proctest.FreeAddr()
	d.api = newProc("api", filepath.Join(binDir, "api"), addr, d.logDir, with("AUDITTRAIL_API_ADDR="+addr))
	addr = proctest.FreeAddr()
	d.ingest = newProc("ingest", filepath.Join(binDir, "ingest"), addr, d.logDir, with("AUDITTRAIL_INGEST_ADDR="+addr))

	// The first writer creates the database and applies the schema; the
	// rest start together once it is ready.
	if err := d.writers[0].start(); err != nil {
		return err
	}
	if err := d.writers[0].waitReady(ctx, 90*time.Second); err != nil {
		return err
	}
	rest := append(append(slices.Clone(d.writers[1:]), d.forwarders...), d.api, d.ingest)
	for _, p := range rest {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range rest {
		if err := p.waitReady(ctx, 90*time.Second); err != nil {
			return err
		}
	}
	d.load, err = newLoad("http://"+d.ingest.addr, uint64(time.Now().UnixNano()))
	if err != nil {
		return err
	}
	names := map[string]string{}
	for i := range loadWorkspaces {
		names[d.load.gen.Workspace(i)] = "owner"
	}
	d.token, err = auth.Mint([]byte(jwtSecret), "usr_drill", "Drill", "drill@example.com", names, 2*time.Hour, time.Now())
	return err
}

// enableForwarding turns forwarding on for every other workspace through
// the API and waits until a probe event of each reached the sink.
func (d *drill) enableForwarding(ctx context.Context) error {
	api := "http://" + d.api.addr
	for i := 0; i < loadWorkspaces; i += 2 {
		d.enabled[d.load.gen.Workspace(i)] = true
	}
	first := d.load.gen.Workspace(0)
	if _, err := waitFor(ctx, 60*time.Second, func() bool {
		st, _ := d.apiDo(ctx, http.MethodGet, api+"/v1/workspaces/"+first+"/forwarding", "")
		return st == http.StatusOK
	}); err != nil {
		return errors.New("the API did not load the settings topic within 60s")
	}
	body := fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": %q}}`, d.sink.url, writeKey)
	for ws := range d.enabled {
		st, b := d.apiDo(ctx, http.MethodPut, api+"/v1/workspaces/"+ws+"/forwarding", body)
		if st != http.StatusOK {
			return fmt.Errorf("PUT forwarding of %s: HTTP %d: %s", ws, st, b)
		}
	}
	// One probe per enabled workspace: once all reached the sink, both
	// forwarders have the settings and deliver.
	probes := d.load.next(len(d.enabled))
	i := 0
	for ws := range d.enabled {
		probes[i].WorkspaceID, probes[i].ID = ws, "probe-"+ws+"-"+d.sfx
		i++
	}
	if !d.load.post(ctx, probes) {
		return errors.New("the gateway did not accept the probe events")
	}
	if _, err := waitFor(ctx, 60*time.Second, func() bool {
		got := d.sink.counts()
		for _, p := range probes {
			if got[p.ID] == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return errors.New("probe events did not reach the sink within 60s")
	}
	logf("forwarding on for %d of %d workspaces; probes delivered", len(d.enabled), loadWorkspaces)
	return nil
}

func (d *drill) apiDo(ctx context.Context, method, url, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// assigned reads each writer's assigned-partitions gauge (-1: no answer).
func (d *drill) assigned(ctx context.Context) []int {
	out := make([]int, len(d.writers))
	for i, w := range d.writers {
		v, ok := w.metric(ctx, "audittrail_writer_assigned_partitions")
		out[i] = -1
		if ok {
			out[i] = int(v)
		}
	}
	return out
}

// exercise runs the load and the faults and measures failover and recovery.
func (d *drill) exercise(ctx context.Context, rep *report) error {
	per := d.o.partitions / writers
	if _, err := waitFor(ctx, 60*time.Second, func() bool {
		a := d.assigned(ctx)
		return a[0] == per && a[1] == per && a[2] == per
	}); err != nil {
		return fmt.Errorf("writers not balanced at start: %v", d.assigned(ctx))
	}
	wg0, err := describeGroup(ctx, d.adm, d.writerGroup)
	if err != nil {
		return fmt.Errorf("describe writer group: %w", err)
	}
	rep.WritersBefore = fmt.Sprint(d.assigned(ctx))
	rep.WriterGroupBefore = wg0.String()
	if fg, err := describeGroup(ctx, d.adm, d.fwdGroup); err == nil {
		rep.ForwarderGroupBefore = fg.String()
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, d.o.load)
	defer stopLoad()
	d.watch = watchStore(ctx, d.ch, d.db)
	loadStart := time.Now()
	loadDone := make(chan struct{})
	go func() { d.load.run(loadCtx, d.o.rate); close(loadDone) }()

	select {
	case <-time.After(d.o.faultAt):
	case <-ctx.Done():
		return ctx.Err()
	case <-loadDone:
		return errors.New("load ended before the fault")
	}
	// The victims: the writer group's coordinator and the second writer.
	g, err := describeGroup(ctx, d.adm, d.writerGroup)
	if err != nil {
		return fmt.Errorf("describe writer group: %w", err)
	}
	node := g.Coordinator
	roles := []string{"coordinator of the writer group"}
	if ql, err := quorumLeader(ctx, d.kcl); err == nil {
		if ql == node {
			roles = append(roles, "KRaft quorum leader")
		} else {
			roles = append(roles, fmt.Sprintf("quorum leader is node %d", ql))
		}
	}
	if st, err := topicState(ctx, d.adm, d.topic, -1); err == nil {
		roles = append(roles, fmt.Sprintf("leader of %d/%d partitions", st.LedBy[node], st.Partitions))
	}
	victim := d.writers[1]
	rep.KilledBroker = fmt.Sprintf("node %d (%s)", node, strings.Join(roles, ", "))
	rep.KilledWriter = victim.name
	logf("SIGKILL broker node %d (%s) and %s", node, strings.Join(roles, ", "), victim.name)
	vr, _ := victim.metric(ctx, "audittrail_writer_rows_inserted_total")
	d.victimRows = int(vr)
	killAt := time.Now()
	if err := d.cl.kill(node); err != nil {
		return err
	}
	victim.signal(syscall.SIGKILL)

	var wg sync.WaitGroup
	var brokerErr, writerErr error
	brokerBack, writerBack := make(chan struct{}), make(chan struct{})
	var backOnce [2]sync.Once
	back := func(i int, c chan struct{}) { backOnce[i].Do(func() { close(c) }) }
	defer back(0, brokerBack)
	defer back(1, writerBack)
	// Recovery: from the moment both are back until every event accepted
	// before that moment is stored.
	caughtUp := make(chan time.Duration, 1)
	rctx, cancelRecovery := context.WithCancel(ctx)
	defer cancelRecovery()
	go func() {
		<-brokerBack
		<-writerBack
		cleared := time.Now()
		acc, _ := d.load.snapshot()
		at, err := waitFor(rctx, d.o.settle, func() bool {
			got, err := drillkit.Visible(rctx, d.ch, d.db)
			return err == nil && missing(acc, got) == 0
		})
		if err != nil {
			caughtUp <- -1
			return
		}
		caughtUp <- at.Sub(cleared)
	}()
	wg.Go(func() {
		leaders, err := waitFor(ctx, 60*time.Second, func() bool {
			st, err := topicState(ctx, d.adm, d.topic, node)
			return err == nil && st.Led == st.Partitions
		})
		if err != nil {
			brokerErr = fmt.Errorf("partitions of the killed broker got no new leader: %w", err)
			return
		}
		rep.LeaderFailover = leaders.Sub(killAt)
		if err := sleepUntil(ctx, killAt.Add(d.o.brokerDown)); err != nil {
			brokerErr = err
			return
		}
		restart := time.Now()
		if err := d.cl.start(fmt.Sprint(node)); err != nil {
			brokerErr = err
			return
		}
		rep.BrokerDown = time.Since(killAt)
		rep.BrokerRestart = time.Since(restart)
		back(0, brokerBack)
		isr, err := waitFor(ctx, 120*time.Second, func() bool {
			st, err := topicState(ctx, d.adm, d.topic, -1)
			return err == nil && st.FullISR == st.Partitions
		})
		if err != nil {
			brokerErr = fmt.Errorf("the restarted broker did not rejoin every ISR: %w", err)
			return
		}
		rep.ISRRestored = isr.Sub(restart)
	})
	wg.Go(func() {
		survivors := func(a []int) int { return a[0] + a[2] }
		took, err := waitFor(ctx, 90*time.Second, func() bool {
			a := d.assigned(ctx)
			return a[0] > per && a[2] > per && survivors(a) == d.o.partitions
		})
		if err != nil {
			writerErr = fmt.Errorf("the surviving writers did not take over (assigned %v): %w", d.assigned(ctx), err)
			return
		}
		rep.WriterFailover = took.Sub(killAt)
		rep.WritersDuring = fmt.Sprint(d.assigned(ctx))
		if g, err := describeGroup(ctx, d.adm, d.writerGroup); err == nil {
			rep.WriterGroupDuring = g.String()
		}
		if err := sleepUntil(ctx, killAt.Add(d.o.writerDown)); err != nil {
			writerErr = err
			return
		}
		restart := time.Now()
		rep.WriterDown = restart.Sub(killAt)
		if err := victim.start(); err != nil {
			writerErr = err
			return
		}
		back(1, writerBack)
		back, err := waitFor(ctx, 90*time.Second, func() bool {
			a := d.assigned(ctx)
			return a[0] == per && a[1] == per && a[2] == per
		})
		if err != nil {
			writerErr = fmt.Errorf("the restarted writer did not get its share back (assigned %v): %w", d.assigned(ctx), err)
			return
		}
		rep.WriterRejoin = back.Sub(restart)
		rep.Rebalanced = true
	})
	wg.Wait()
	if err := errors.Join(brokerErr, writerErr); err != nil {
		stopLoad()
		<-loadDone
		return err
	}
	settled := time.Now()
	rep.IngestGap = d.load.longestGap(killAt, settled)
	logf("broker and writer back, ISR complete and partitions even %s after the kill; waiting for the load to end",
		settled.Sub(killAt).Round(100*time.Millisecond))
	rep.CaughtUp = <-caughtUp
	<-loadDone
	rep.LoadRan = time.Since(loadStart)
	rep.LatP50, rep.LatP99, rep.LatMax = d.load.latency()
	return nil
}

// check waits until everything accepted is stored and forwarded, then
// compares what the API shows and the sink received with what was accepted.
func (d *drill) check(ctx context.Context, rep *report) error {
	accepted, sent := d.load.snapshot()
	loadEnd := time.Now()
	_, err := waitFor(ctx, d.o.settle, func() bool {
		got, err := drillkit.Visible(ctx, d.ch, d.db)
		return err == nil && missing(accepted, got) == 0
	})
	if err != nil {
		logf("not everything accepted is stored after %s; counting anyway", d.o.settle)
	}
	rep.StoreSettled = time.Since(loadEnd)
	d.watch.poll(ctx, d.ch, d.db)
	d.watch.close()
	rep.StoreP50, rep.StoreP99, rep.StoreMax = d.watch.delays(accepted)
	forwardable := map[string]bool{}
	for k := range accepted {
		ws, id, _ := strings.Cut(k, "/")
		if d.enabled[ws] {
			forwardable[id] = true
		}
	}
	_, err = waitFor(ctx, d.o.settle, func() bool { return missing(forwardable, d.sink.counts()) == 0 })
	if err != nil {
		logf("not everything forwardable reached the sink after %s; counting anyway", d.o.settle)
	}

	workspaces := make([]string, 0, loadWorkspaces)
	for i := range loadWorkspaces {
		workspaces = append(workspaces, d.load.gen.Workspace(i))
	}
	view, err := readAPI(ctx, "http://"+d.api.addr, d.token, workspaces, func(ws, id string) bool { return sent[key(ws, id)] })
	if err != nil {
		return err
	}
	rep.APIPages = view.pages
	rep.Accepted, rep.Unconfirmed = len(accepted), len(sent)-len(accepted)
	d.load.mu.Lock()
	rep.Retried = d.load.failures
	d.load.mu.Unlock()
	rep.AcceptedRate = float64(len(accepted)) / rep.LoadRan.Seconds()
	for k, n := range view.ids {
		if sent[k] {
			rep.Stored++
		}
		if n > 1 {
			rep.Duplicates++
		}
	}
	rep.Lost = missing(accepted, view.ids)
	rep.SettingsEvents = view.byName["Audit Forwarding Enabled"]
	rep.SettingsWant = len(d.enabled)
	for name, n := range view.byName {
		if name != "Audit Forwarding Enabled" {
			rep.Unexpected += n
		}
	}

	got := d.sink.counts()
	rep.Forwardable = len(forwardable)
	for k := range sent {
		ws, id, _ := strings.Cut(k, "/")
		n := got[id]
		if n == 0 {
			continue
		}
		if d.enabled[ws] {
			rep.ForwardedUnique++
			rep.ForwardDeliveries += n
		} else {
			rep.ForwardStray++
		}
	}
	rep.ForwardMissing = missing(forwardable, got)

	rep.WritersAfter = fmt.Sprint(d.assigned(ctx))
	rows := make([]int, len(d.writers))
	for i, w := range d.writers {
		v, _ := w.metric(ctx, "audittrail_writer_rows_inserted_total")
		rows[i] = int(v)
	}
	rep.RowsPerWriter = fmt.Sprint(rows)
	inserted := d.victimRows
	for _, n := range rows {
		inserted += n
	}
	if unique, err := uniqueRows(ctx, d.ch, d.db); err == nil {
		rep.RowsReplayed = inserted - unique
		if raw, err := rawRows(ctx, d.ch, d.db); err == nil {
			rep.CopiesHidden = int(raw) - unique
		}
	}
	if g, err := describeGroup(ctx, d.adm, d.writerGroup); err == nil {
		rep.WriterGroupAfter = g.String()
	}
	if g, err := describeGroup(ctx, d.adm, d.fwdGroup); err == nil {
		rep.ForwarderGroupAfter = g.String()
	}
	return nil
}

// cleanup stops the processes and removes the run's database and topics.
func (d *drill) cleanup() {
	if d.watch != nil {
		d.watch.close()
	}
	var wg sync.WaitGroup
	for _, p := range append(append([]*proc{d.ingest, d.api}, d.forwarders...), d.writers...) {
		if p != nil {
			wg.Go(func() { p.signal(syscall.SIGTERM) })
		}
	}
	wg.Wait()
	if d.sink != nil {
		d.sink.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.ch != nil {
		if err := d.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+d.db); err != nil {
			logf("drop database %s: %v", d.db, err)
		}
		d.ch.Close()
	}
	if d.adm != nil {
		if _, err := d.adm.DeleteTopics(ctx, d.topic, d.dlq, d.settings, d.fwdDLQ); err != nil {
			logf("delete topics: %v", err)
		}
		_, _ = d.adm.DeleteGroups(ctx, d.writerGroup, d.fwdGroup)
	}
	if d.kcl != nil {
		d.kcl.Close()
	}
}

func (d *drill) printLogs() {
	for _, p := range append(append(slices.Clone(d.writers), d.forwarders...), d.api, d.ingest) {
		if p == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "--- %s (last 1500 bytes of %s) ---\n%s\n", p.name, p.logPath, tailFile(p.logPath, 1500))
	}
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-time.After(time.Until(t)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor polls cond every 200 ms until it holds (returning when) or
// within ends.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("condition not met within %s", within)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
