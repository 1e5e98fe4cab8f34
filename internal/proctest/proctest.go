// Package proctest runs the product's binaries as processes for tests,
// drills and benchmarks.
//
// It holds the switch that turns integration tests on, builds the binaries,
// starts them, learns the port each bound (a binary given AnyPort binds a
// port the kernel chooses and logs it, which Output reads: no other process
// can take the port first), waits until one is ready and reads its metrics.
// It imports only internal/config of this module, so any test can use it.
//
// Integration tests run when AUDITTRAIL_INTEGRATION=1 (config.Integration;
// scripts/test sets it); otherwise Require skips them with a message saying
// how to run them. Enabled is the one place that reads the switch.
package proctest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/audittrail/audittrail/internal/config"
)

// Enabled reports whether integration tests should run.
func Enabled() bool { return config.Integration.Get(config.FromOS()) }

// Require skips t unless integration tests are enabled.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip("integration test: run scripts/test (or set " + config.Integration.Name + "=1 with Kafka and ClickHouse up)")
	}
}

// Module is the import path of this module.
const Module = "github.com/audittrail/audittrail"

// Build compiles the commands at pkgs, paths inside the module such as
// "consumers/cmd/writer" (a leading "./" is allowed), into dir and returns
// each binary's path by command name (the path's last element). It works
// from any directory inside the module.
func Build(dir string, pkgs ...string) (map[string]string, error) {
	args := []string{"build", "-o", dir + "/"}
	bins := map[string]string{}
	for _, p := range pkgs {
		p = strings.TrimPrefix(p, "./")
		args = append(args, Module+"/"+p)
		bins[path.Base(p)] = dir + "/" + path.Base(p)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return bins, nil
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// FreeAddr returns a loopback address with a port nobody listens on now
// and that FreeAddr has not returned before in this process. The port is
// free only until someone binds it: another process or test, binding port
// 0, may be given it first. Start the product's binaries on AnyPort
// instead, and bind a test's own servers to port 0 directly; FreeAddr is
// for programs that cannot report the port they bound. When no port can
// be found it returns "127.0.0.1:0".
func FreeAddr() string {
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			break
		}
		addr := ln.Addr().(*net.TCPAddr)
		_ = ln.Close()
		if !handed[addr.Port] {
			handed[addr.Port] = true
			return addr.String()
		}
	}
	return "127.0.0.1:0"
}

// WaitReady polls http://addr/readyz every 100 ms until it answers 200.
// It returns an error when within passes, ctx ends, or exited (nil for
// none) is closed: a process that ended is not waited for.
func WaitReady(ctx context.Context, addr string, within time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s: the process exited before it was ready", addr)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w", addr, within, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Metric returns the sum of the samples of the named metric (one per label
// set) that http://addr/metrics serves, and how many samples there were
// (0 when the metric is not there). An error means the process did not
// answer.
func Metric(ctx context.Context, addr, name string) (sum float64, samples int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s/metrics: status %d", addr, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum, samples = sum+v, samples+1
	}
	return sum, samples, sc.Err()
}
