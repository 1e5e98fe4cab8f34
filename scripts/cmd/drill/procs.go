package main

// The scenario's processes (gateway, writer, forwarder), the faults
// injected into them and the servers, and the clean-up.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/twmb/franz-go/pkg/kadm"
)

// start starts the named process on a port of its choosing (each start a
// new one) and waits until it is ready there.
func (e *env) start(name string) error {
	cmd := exec.Command(e.bins[name])
	cmd.Env = append(os.Environ(), e.vars...)
	p, err := proctest.Start(cmd)
	if err != nil {
		return err
	}
	e.procs[name] = p
	addr, err := p.Ready(context.Background(), "http", 60*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	e.mu.Lock()
	e.addrs[name] = addr
	e.mu.Unlock()
	return nil
}

// addr is the address the named process listens on now.
func (e *env) addr(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addrs[name]
}

func (e *env) stop(name string, sig syscall.Signal) {
	if p := e.procs[name]; p != nil {
		p.Stop(sig, 30*time.Second)
	}
}

// printLogs writes the end of each process's log to stderr.
func (e *env) printLogs() {
	for name, p := range e.procs {
		fmt.Fprintf(os.Stderr, "--- %s log (last 2000 bytes) ---\n%s\n", name, tail([]byte(p.Out.String()), 2000))
	}
}

func (e *env) cleanup() {
	e.stop("ingest", syscall.SIGTERM)
	e.stop("writer", syscall.SIGTERM)
	e.stop("forwarder", syscall.SIGTERM)
	if e.sink != nil {
		e.sink.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.chConn != nil {
		_ = e.chConn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.db)
		e.chConn.Close()
	}
	if e.producer != nil {
		adm := kadm.NewClient(e.producer)
		_, _ = adm.DeleteTopics(ctx, e.topic, e.dlq)
		if e.sink != nil {
			_, _ = adm.DeleteTopics(ctx, e.settings, e.fwdDLQ)
			_, _ = adm.DeleteGroup(ctx, e.fwdGroup)
		}
		e.producer.Close()
	}
}

// steadyLoad posts batches of 50 realistic events at o.rate through the
// gateway and records the ids of every 202. With poison, 1% of the load is

func (e *env) services(fn string) error {
	cmd := exec.Command("bash", "-c", ". scripts/lib/services.sh && "+fn)
	cmd.Dir, cmd.Stdout, cmd.Stderr = e.o.root, os.Stderr, os.Stderr
	return cmd.Run()
}

func (e *env) inject(ctx context.Context, scenario string) error {
	switch scenario {
	case "kill-writer":
		e.stop("writer", syscall.SIGKILL)
		return e.start("writer")
	case "clickhouse-down":
		if err := e.services("clickhouse_stop"); err != nil {
			return err
		}
		time.Sleep(e.o.downFor)
		return e.services("clickhouse_start")
	case "kafka-restart":
		if err := e.services("kafka_stop"); err != nil {
			return err
		}
		return e.services("kafka_start")
	}
	if e.sink != nil {
		e.sink.setFault(true)
		time.Sleep(e.o.sinkFor)
		e.sink.setFault(false)
	}
	return nil // poison and duplicates are in the load itself
}
