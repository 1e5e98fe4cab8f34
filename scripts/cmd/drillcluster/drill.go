package main

// One run of the drill: its topics, groups, database and processes, the
// order of its stages, and the clean-up.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/proctest"
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
