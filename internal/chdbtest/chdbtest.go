// Package chdbtest runs the module's SQL on a current ClickHouse, in
// process, through chdb.
//
// chdb is the chdb-core Python package, ClickHouse 26.9 embedded in a Python
// module. It complements the integration tests on the real server, Debian's
// ClickHouse 18.16: current servers cannot be installed here, and the
// product must run on both.
//
// Start launches one Python process (runner.py) holding one chdb session
// for a test. Server has the Exec, Query, QueryRow and PrepareBatch methods
// of a clickhouse-go connection, so the code under test runs unchanged
// through the narrow connection interfaces it declares: arguments are bound
// into the SQL text as clickhouse-go binds them client-side (Bind), a batch
// is sent as INSERT ... VALUES, and a result's values scan only into the Go
// types the driver accepts for their ClickHouse types. Query settings put
// on a context with clickhouse.Context are not applied.
//
// The tests run when AUDITTRAIL_INTEGRATION=1 (scripts/test sets it after
// installing chdb with chdb_install from scripts/lib/chdb.sh, which exports
// AUDITTRAIL_CHDB_PYTHON); then a missing chdb fails the test instead of
// skipping it.
package chdbtest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	_ "embed" // runner.py
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
)

var installHint = "install it with scripts/test, or from the repository root: " +
	"bash -c '. scripts/lib/services.sh && . scripts/lib/chdb.sh && chdb_install' " +
	"(a virtualenv in .local/chdb with chdb-core; or set " + config.CHDBPython.Name + " to a Python that has chdb-core 26.9)"

//go:embed runner.py
var runner string

// Python returns the Python interpreter with chdb-core: config.CHDBPython,
// which chdb_install (scripts/lib/chdb.sh) exports, or else the
// interpreter of the virtualenv chdb_install creates,
// $AUDITTRAIL_HOME/chdb/bin/python (config.Home; by default
// <repo>/.local/chdb).
func Python() (string, error) {
	env := config.FromOS()
	py := config.CHDBPython.Get(env)
	if py == "" {
		home := config.Home.GetOr(env, "")
		if home == "" {
			root, err := repoRoot()
			if err != nil {
				return "", err
			}
			home = filepath.Join(root, config.Home.Default)
		}
		py = filepath.Join(home, "chdb", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		return "", fmt.Errorf("chdb's Python: %w", err)
	}
	return py, nil
}

// repoRoot is the nearest folder up from the working directory (a test's
// package folder) that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Require skips t unless integration tests are enabled, and fails it when
// they are but chdb is not installed. It returns the Python to run.
func Require(t testing.TB) string {
	t.Helper()
	if !proctest.Enabled() {
		t.Skip("current-ClickHouse (chdb) compatibility test: run scripts/test (or set " + config.Integration.Name + "=1 with chdb installed by chdb_install from scripts/lib/chdb.sh)")
	}
	py, err := Python()
	if err != nil {
		t.Fatalf("chdb (current ClickHouse in process) is not installed: %v; %s", err, installHint)
	}
	return py
}

// Server is one chdb session in a Python process. Its methods are safe for
// concurrent use; statements run one at a time.
type Server struct {
	// Version is what SELECT version() returns, e.g. "26.9.2.1".
	Version string
	// TZ is the server's time zone, which binding uses as clickhouse-go
	// uses the one the server announces.
	TZ *time.Location

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers chan answer
	done    chan struct{} // closed when the reader goroutine ends
	stderr  *lockedBuffer

	mu   sync.Mutex // one statement at a time; guards log and dead
	log  []string
	dead error
}

type answer struct {
	Meta     [][2]string `json:"meta"`
	Data     [][]any     `json:"data"`
	Error    string      `json:"error"`
	Version  string      `json:"version"`
	Timezone string      `json:"timezone"`

	readErr error
}

// Start starts chdb for t (see Require) with a fresh session in a
// temporary folder; it stops at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	py := Require(t)
	s := &Server{answers: make(chan answer), done: make(chan struct{}), stderr: &lockedBuffer{}}
	s.cmd = exec.Command(py, "-c", runner, filepath.Join(t.TempDir(), "session"))
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("chdb: %v", err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatalf("chdb: %v", err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start chdb's Python %s: %v; %s", py, err, installHint)
	}
	go s.read(stdout)
	t.Cleanup(s.close)

	select {
	case a, ok := <-s.answers:
		if !ok || a.Version == "" {
			_ = s.stdin.Close()
			<-s.done
			_ = s.cmd.Wait() // collects all of stderr
			t.Fatalf("chdb did not start: %s\n%s", errors.Join(a.readErr, errors.New(s.stderr.tail())), installHint)
		}
		s.Version = a.Version
		if s.TZ, err = time.LoadLocation(a.Timezone); err != nil {
			t.Fatalf("chdb's time zone %q: %v", a.Timezone, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("chdb did not start within 2 minutes: %s", s.stderr.tail())
	}
	return s
}

// read hands each answer line to the statement waiting for it.
func (s *Server) read(stdout io.Reader) {
	defer close(s.done)
	defer close(s.answers)
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var a answer
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&a); err != nil {
			a.readErr = fmt.Errorf("decode chdb's answer: %w", err)
		}
		s.answers <- a
	}
}

// close ends the Python process and waits for it and the reader.
func (s *Server) close() {
	_ = s.stdin.Close()
	waited := make(chan struct{})
	go func() {
		for range s.answers { // drain until the reader ends
		}
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-waited
	}
	<-s.done
	_ = s.cmd.Wait()
}

// Statements returns every statement run so far, arguments bound, in
// order.
func (s *Server) Statements() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// run binds args into query and runs it. When ctx ends first, the Python
// process is killed and the server fails every later statement.
func (s *Server) run(ctx context.Context, query string, args []any) (answer, error) {
	q, err := Bind(s.TZ, query, args...)
	if err != nil {
		return answer{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead != nil {
		return answer{}, s.dead
	}
	s.log = append(s.log, q)
	req, _ := json.Marshal(map[string]string{"sql": q})
	if _, err := s.stdin.Write(append(req, '\n')); err != nil {
		s.dead = fmt.Errorf("chdb exited: %w: %s", err, s.stderr.tail())
		return answer{}, s.dead
	}
	select {
	case a, ok := <-s.answers:
		switch {
		case !ok:
			s.dead = fmt.Errorf("chdb exited: %s", s.stderr.tail())
			return answer{}, s.dead
		case a.readErr != nil:
			return answer{}, a.readErr
		case a.Error != "":
			return answer{}, &Error{Query: q, Message: a.Error}
		}
		return a, nil
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		s.dead = fmt.Errorf("chdb stopped: a statement's context ended: %w", ctx.Err())
		return answer{}, ctx.Err()
	}
}

// Error is ClickHouse's error for one statement.
type Error struct {
	Query   string // the statement, arguments bound
	Message string // ClickHouse's message, e.g. "Code: 62. DB::Exception: Syntax error..."
}

func (e *Error) Error() string { return fmt.Sprintf("%s\nin: %s", e.Message, e.Query) }

// Exec runs a statement and discards any result.
func (s *Server) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.run(ctx, query, args)
	return err
}

// Query runs a query; the result is read in full before it returns.
func (s *Server) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	a, err := s.run(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &rows{meta: a.Meta, data: a.Data, tz: s.TZ, i: -1}, nil
}

// QueryRow runs a query for its first row; Scan returns sql.ErrNoRows when
// there is none, as clickhouse-go does.
func (s *Server) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	r, err := s.Query(ctx, query, args...)
	if err != nil {
		return &row{err: err}
	}
	return &row{rows: r.(*rows)}
}

// PrepareBatch returns a batch for an INSERT INTO t (columns) statement;
// Send (or Flush) runs it with the appended rows as VALUES.
func (s *Server) PrepareBatch(ctx context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(query)), "INSERT ") {
		return nil, fmt.Errorf("chdbtest: a batch needs an INSERT statement, got %q", query)
	}
	return &batch{s: s, ctx: ctx, query: strings.TrimSpace(query)}, nil
}

type rows struct {
	meta [][2]string
	data [][]any
	tz   *time.Location
	i    int
}

func (r *rows) Next() bool {
	r.i++
	return r.i < len(r.data)
}

func (r *rows) Scan(dest ...any) error {
	if r.i < 0 || r.i >= len(r.data) {
		return errors.New("chdbtest: Scan without a current row")
	}
	if len(dest) != len(r.meta) {
		return fmt.Errorf("chdbtest: %d scan destinations for %d columns", len(dest), len(r.meta))
	}
	for i, d := range dest {
		if err := scanValue(r.data[r.i][i], r.meta[i][1], d, r.tz); err != nil {
			return fmt.Errorf("column %s: %w", r.meta[i][0], err)
		}
	}
	return nil
}

func (r *rows) ScanStruct(any) error {
	return errors.New("chdbtest: ScanStruct is not supported")
}

func (r *rows) Totals(...any) error { return errors.New("chdbtest: Totals is not supported") }

// ColumnTypes is not supported: it returns nil.
func (r *rows) ColumnTypes() []driver.ColumnType { return nil }

func (r *rows) Columns() []string {
	out := make([]string, len(r.meta))
	for i, m := range r.meta {
		out[i] = m[0]
	}
	return out
}

func (r *rows) Close() error  { return nil }
func (r *rows) Err() error    { return nil }
func (r *rows) HasData() bool { return len(r.data) > 0 }

type row struct {
	rows *rows
	err  error
}

func (r *row) Err() error { return r.err }

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if !r.rows.Next() {
		return sql.ErrNoRows
	}
	return r.rows.Scan(dest...)
}

func (r *row) ScanStruct(any) error { return errors.New("chdbtest: ScanStruct is not supported") }

// lockedBuffer collects the process's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail returns the last 2 KB written.
func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 2048 {
		s = "..." + s[len(s)-2048:]
	}
	return strings.TrimSpace(s)
}

// StopMerges stops merges on the named tables of db, so that rows stay on
// disk as inserted (an unmerged copy, a row a TTL would remove) until the
// code under test removes them.
func (s *Server) StopMerges(t testing.TB, db string, tables ...string) {
	t.Helper()
	for _, table := range tables {
		if err := s.Exec(context.Background(), "SYSTEM STOP MERGES "+db+"."+table); err != nil {
			t.Fatalf("stop merges on %s.%s: %v", db, table, err)
		}
	}
}
