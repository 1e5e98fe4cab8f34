package main

// The API under test, started as its own process on a port of its choosing.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

func startAPI(o options, bin string, srv drillkit.Servers, secret string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"AUDITTRAIL_API_ADDR="+proctest.AnyPort, "AUDITTRAIL_CLICKHOUSE_DATABASE="+o.database, "AUDITTRAIL_CLICKHOUSE_ADDR="+srv.ClickHouse.Addr,
		"AUDITTRAIL_JWT_SECRET="+secret, "AUDITTRAIL_KAFKA_TOPIC="+exportTopic,
		"AUDITTRAIL_KAFKA_BROKERS="+strings.Join(srv.Kafka.Brokers, ","))
	logf, err := os.CreateTemp("", "apibench-api-*.log")
	if err != nil {
		return nil, "", err
	}
	out := &proctest.Output{}
	w := io.MultiWriter(logf, out)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	addr, err := out.Addr(context.Background(), "http", 60*time.Second, nil)
	if err == nil {
		err = proctest.WaitReady(context.Background(), addr, 60*time.Second, nil)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, "", fmt.Errorf("the API did not get ready (%w); see %s", err, logf.Name())
	}
	fmt.Printf("API pid %d on %s (log %s)\n", cmd.Process.Pid, addr, logf.Name())
	return cmd, "http://" + addr, nil
}
