package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// AnyPort is the listen address to give a process a test starts: the
// process binds a loopback port the kernel chooses, and logs it (see
// Output), so no other process or test can take the port between choosing
// and binding it, as they can with FreeAddr.
const AnyPort = "127.0.0.1:0"

// listeningMessage is httpserver.ListeningMessage (this package imports
// nothing of the module but config; httpserver's tests check they agree).
const listeningMessage = "listening"

// maxLine bounds the unfinished line Output keeps to look for a listening
// line in; a longer line is kept in the output but not parsed.
const maxLine = 64 << 10

// Output collects a process's stdout and stderr (set it as both) and notes
// the address each of its listeners logged, from the JSON line
// {"msg":"listening","listener":name,"addr":host:port} that the product's
// binaries write once a listener is bound (httpserver.Listening). It is
// safe for concurrent use.
type Output struct {
	mu      sync.Mutex
	all     bytes.Buffer
	line    []byte
	long    bool              // the line being read passed maxLine
	addrs   map[string]string // by listener name
	changed chan struct{}     // closed (and replaced) when addrs changes
}

// Write keeps p and parses each line it completes.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	o.all.Write(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !o.long && len(o.line)+len(chunk) <= maxLine {
			o.line = append(o.line, chunk...)
		} else {
			o.long, o.line = true, o.line[:0]
		}
		if i < 0 {
			break
		}
		if !o.long {
			o.parse(o.line)
		}
		o.line, o.long, p = o.line[:0], false, p[i+1:]
	}
	return n, nil
}

// parse notes the address of a listening line; other lines are ignored.
func (o *Output) parse(line []byte) {
	var l struct{ Msg, Listener, Addr string }
	if json.Unmarshal(line, &l) != nil || l.Msg != listeningMessage || l.Listener == "" || l.Addr == "" {
		return
	}
	if o.addrs == nil {
		o.addrs = map[string]string{}
	}
	o.addrs[l.Listener] = l.Addr
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

// Logged returns the address the named listener logged, or "" when it has
// not logged one (yet).
func (o *Output) Logged(listener string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addrs[listener]
}

// Addr waits until the process has logged the address of the named
// listener and returns it. It returns an error when within passes, ctx
// ends, or exited (nil for none) is closed first.
func (o *Output) Addr(ctx context.Context, listener string, within time.Duration, exited <-chan struct{}) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		o.mu.Lock()
		addr, changed := o.addrs[listener], o.changed
		if addr == "" && changed == nil {
			changed = make(chan struct{})
			o.changed = changed
		}
		o.mu.Unlock()
		if addr != "" {
			return addr, nil
		}
		select {
		case <-changed:
		case <-exited:
			return "", fmt.Errorf("listener %q: the process exited before it logged its address", listener)
		case <-ctx.Done():
			return "", fmt.Errorf("listener %q: no address logged within %s: %w", listener, within, context.Cause(ctx))
		}
	}
}

// Process is a running command started by Start, with its output.
type Process struct {
	Cmd *exec.Cmd
	Out *Output
	// Exited is closed once the process has exited and been waited for;
	// Cmd.ProcessState may be read after that, and Wait must not be called.
	Exited <-chan struct{}
}

// Start starts cmd with its stdout and stderr going to a new Output and
// waits for it in the background.
func Start(cmd *exec.Cmd) (*Process, error) {
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return &Process{Cmd: cmd, Out: out, Exited: exited}, nil
}

// Ready waits until the named listener of p has logged its address and
// answers 200 on /readyz there, and returns the address. An exit of the
// process ends the wait with an error.
func (p *Process) Ready(ctx context.Context, listener string, within time.Duration) (string, error) {
	start := time.Now()
	addr, err := p.Out.Addr(ctx, listener, within, p.Exited)
	if err != nil {
		return "", err
	}
	return addr, WaitReady(ctx, addr, within-time.Since(start), p.Exited)
}

// Stop sends sig to p (unless it has exited) and waits for it to exit; a
// process still running after within is killed, and Stop reports false.
func (p *Process) Stop(sig os.Signal, within time.Duration) bool {
	select {
	case <-p.Exited:
		return true
	default:
	}
	_ = p.Cmd.Process.Signal(sig)
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-p.Exited:
		return true
	case <-t.C:
		_ = p.Cmd.Process.Kill()
		<-p.Exited
		return false
	}
}
