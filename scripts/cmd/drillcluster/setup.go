package main

// Setting up a run: the topics, the processes on the cluster, and
// forwarding turned on through the API.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
	d.newProcs(binDir)
	if err := d.startProcs(ctx); err != nil {
		return err
	}
	d.load, err = newLoad("http://"+d.ingest.addr(), uint64(time.Now().UnixNano()))
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

// newProcs prepares the writers, forwarders, API and gateway, each on a
// free address, with the run's environment.
func (d *drill) newProcs(binDir string) {
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
		d.writers = append(d.writers, newProc(fmt.Sprintf("writer-%d", i), filepath.Join(binDir, "writer"), d.logDir,
			with("AUDITTRAIL_WRITER_ADDR="+proctest.AnyPort, fmt.Sprintf("AUDITTRAIL_WRITER_INSTANCE_ID=drill-writer-%d", i))))
	}
	for i := 1; i <= forwarders; i++ {
		d.forwarders = append(d.forwarders, newProc(fmt.Sprintf("forwarder-%d", i), filepath.Join(binDir, "forwarder"),
			d.logDir, with("AUDITTRAIL_FORWARDER_ADDR="+proctest.AnyPort)))
	}
	d.api = newProc("api", filepath.Join(binDir, "api"), d.logDir, with("AUDITTRAIL_API_ADDR="+proctest.AnyPort))
	d.ingest = newProc("ingest", filepath.Join(binDir, "ingest"), d.logDir, with("AUDITTRAIL_INGEST_ADDR="+proctest.AnyPort))
}

// startProcs starts the processes and waits until they are ready.
func (d *drill) startProcs(ctx context.Context) error {
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
	return nil
}

// enableForwarding turns forwarding on for every other workspace through
// the API and waits until a probe event of each reached the sink.
func (d *drill) enableForwarding(ctx context.Context) error {
	api := "http://" + d.api.addr()
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
