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
// environment, health address and log file. Start may be called again
// after the process ended (a restart).
type proc struct {
	name, bin, addr, logPath string
	env                      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProc(name, bin, addr, logDir string, env []string) *proc {
	return &proc{name: name, bin: bin, addr: addr, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// start runs the binary, appending to its log file.
func (p *proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
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
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// waitReady waits until the process answers 200 on /readyz.
func (p *proc) waitReady(ctx context.Context, within time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if err := proctest.WaitReady(ctx, p.addr, within, done); err != nil {
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
	v, n, err := proctest.Metric(ctx, p.addr, name)
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
