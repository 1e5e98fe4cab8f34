package main

// The scenario's processes (gateway, writer, forwarder), the faults
// injected into them and the servers, and the clean-up.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/twmb/franz-go/pkg/kadm"
)

func (e *env) start(name string) error {
	var logs bytes.Buffer
	cmd := exec.Command(e.bins[name])
	cmd.Env = append(os.Environ(), e.vars...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	e.procs[name], e.logs[name] = cmd, &logs
	if err := proctest.WaitReady(context.Background(), e.addrs[name], 60*time.Second, nil); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (e *env) stop(name string, sig syscall.Signal) {
	cmd := e.procs[name]
	if cmd == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
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
