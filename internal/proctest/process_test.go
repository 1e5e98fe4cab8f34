package proctest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
)

func TestOutputReadsListeningLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   map[string]string // listener -> address; "" not found
	}{
		{"one line", []string{`{"time":"t","level":"INFO","msg":"listening","service":"api","listener":"http","addr":"127.0.0.1:4242"}` + "\n"},
			map[string]string{"http": "127.0.0.1:4242", "admin": ""}},
		{"split across writes", []string{`{"msg":"list`, `ening","listener":"http","ad`, `dr":"127.0.0.1:1"}`, "\n"},
			map[string]string{"http": "127.0.0.1:1"}},
		{"two listeners in one write", []string{"{\"msg\":\"listening\",\"listener\":\"http\",\"addr\":\"127.0.0.1:1\"}\n{\"msg\":\"listening\",\"listener\":\"admin\",\"addr\":\"127.0.0.1:2\"}\n"},
			map[string]string{"http": "127.0.0.1:1", "admin": "127.0.0.1:2"}},
		{"an unfinished line", []string{`{"msg":"listening","listener":"http","addr":"127.0.0.1:1"}`},
			map[string]string{"http": ""}},
		{"another message", []string{`{"msg":"read api listening","listener":"http","addr":"127.0.0.1:1"}` + "\n"},
			map[string]string{"http": ""}},
		{"not JSON", []string{"listening http 127.0.0.1:1\n", "{\"msg\":\"listening\"\n"},
			map[string]string{"http": ""}},
		{"no address", []string{`{"msg":"listening","listener":"http"}` + "\n"},
			map[string]string{"http": ""}},
		{"a line too long to parse, then a good one", []string{
			`{"msg":"listening","listener":"http","addr":"127.0.0.1:1","pad":"` + strings.Repeat("x", 70<<10) + `"}` + "\n",
			`{"msg":"listening","listener":"admin","addr":"127.0.0.1:2"}` + "\n"},
			map[string]string{"http": "", "admin": "127.0.0.1:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o proctest.Output
			var all strings.Builder
			for _, w := range tc.writes {
				n, err := o.Write([]byte(w))
				require.NoError(t, err)
				require.Equal(t, len(w), n)
				all.WriteString(w)
			}
			require.Equal(t, all.String(), o.String(), "the output is kept whole")
			for listener, want := range tc.want {
				got, err := o.Addr(context.Background(), listener, 50*time.Millisecond, nil)
				if want == "" {
					require.ErrorContains(t, err, "no address logged", listener)
					continue
				}
				require.NoError(t, err, listener)
				require.Equal(t, want, got, listener)
			}
		})
	}
}

func TestOutputAddrWaitsForTheLine(t *testing.T) {
	var o proctest.Output
	got := make(chan string, 1)
	go func() {
		addr, err := o.Addr(context.Background(), "http", time.Minute, nil)
		require.NoError(t, err)
		got <- addr
	}()
	_, _ = o.Write([]byte(`{"msg":"listening","listener":"admin","addr":"127.0.0.1:1"}` + "\n"))
	_, _ = o.Write([]byte(`{"msg":"listening","listener":"http","addr":"127.0.0.1:2"}` + "\n"))
	require.Equal(t, "127.0.0.1:2", <-got)

	exited := make(chan struct{})
	close(exited)
	_, err := o.Addr(context.Background(), "metrics", time.Minute, exited)
	require.ErrorContains(t, err, "exited before it logged")
}

// TestHelperProcess is the child of the Process tests: it binds
// proctest.AnyPort, logs the port as the binaries do, answers /readyz,
// and exits on SIGTERM (or at once, status 3, in mode exit).
func TestHelperProcess(t *testing.T) {
	switch os.Getenv("PROCTEST_HELPER") {
	case "serve":
	case "exit":
		os.Exit(3)
	default:
		t.Skip("the child of TestProcess*")
	}
	ln, err := net.Listen("tcp", proctest.AnyPort)
	require.NoError(t, err)
	fmt.Printf(`{"level":"INFO","msg":"listening","listener":"http","addr":%q}`+"\n", ln.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	http.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
	go func() { _ = http.Serve(ln, nil) }()
	<-sig
	os.Exit(0)
}

func helper(t *testing.T, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "PROCTEST_HELPER="+mode)
	return cmd
}

func TestProcessReadyOnThePortItBound(t *testing.T) {
	p, err := proctest.Start(helper(t, "serve"))
	require.NoError(t, err)
	addr, err := p.Ready(context.Background(), "http", time.Minute)
	require.NoError(t, err, p.Out.String())
	require.NotEqual(t, proctest.AnyPort, addr)
	resp, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.True(t, p.Stop(syscall.SIGTERM, time.Minute), "exits on SIGTERM")
	require.True(t, p.Cmd.ProcessState.Success())
	require.True(t, p.Stop(syscall.SIGTERM, time.Minute), "stopping again is a no-op")

	p, err = proctest.Start(helper(t, "exit"))
	require.NoError(t, err)
	_, err = p.Ready(context.Background(), "http", time.Minute)
	require.ErrorContains(t, err, "exited before it logged")
	require.Equal(t, 3, p.Cmd.ProcessState.ExitCode())
}

func TestRefusedAddrRefusesAndCannotBeTaken(t *testing.T) {
	addr := proctest.RefusedAddr(t)
	_, err := net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "nobody else can listen there")
	require.NotEqual(t, addr, proctest.RefusedAddr(t))
}
