package main

// The product's processes the drill runs: start, readiness, signals,
// metrics and logs.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/internal/proctest"
)

// proc is one product process the drill runs: a binary with its own
// environment and log file, listening on a port of its choosing
// (proctest.AnyPort in env), which it logs. Start may be called again after
// the process ended (a restart, on a new port).
type proc struct {
	name, bin, logPath string
	env                []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *proctest.Output // the running process's output, for its address
	done chan struct{}
}

func newProc(name, bin, logDir string, env []string) *proc {
	return &proc{name: name, bin: bin, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// addr is the health address of the last process started, "" until it
// logged it.
func (p *proc) addr() string {
	p.mu.Lock()
	out := p.out
	p.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.Logged("http")
}

// start runs the binary, appending to its log file.
func (p *proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	out := &proctest.Output{}
	w := io.MultiWriter(f, out)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.out, p.done = cmd, out, done
	p.mu.Unlock()
	return nil
}

// waitReady waits until the process has logged its address and answers
// 200 on /readyz there.
func (p *proc) waitReady(ctx context.Context, within time.Duration) error {
	p.mu.Lock()
	out, done := p.out, p.done
	p.mu.Unlock()
	start := time.Now()
	addr, err := out.Addr(ctx, "http", within, done)
	if err == nil {
		err = proctest.WaitReady(ctx, addr, within-time.Since(start), done)
	}
	if err != nil {
		return fmt.Errorf("%s: %w; see %s", p.name, err, p.logPath)
	}
	return nil
}

// signal sends sig and waits until the process ended (SIGKILL after 30 s).
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// metric reads one unlabelled gauge or counter from the process's
// /metrics; ok is false when the process does not answer within a second
// or does not have the metric.
func (p *proc) metric(ctx context.Context, name string) (float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	addr := p.addr()
	if addr == "" {
		return 0, false
	}
	v, n, err := proctest.Metric(ctx, addr, name)
	return v, n > 0 && err == nil
}

// tailFile returns the last n bytes of a file.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
