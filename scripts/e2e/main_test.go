package e2e

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
)

// parallel is how many tests of this package run at once unless -parallel
// says otherwise. Its tests spend their time waiting on the processes they
// start, on Kafka and on ClickHouse, not computing, so they overlap well
// beyond go test's default of one per core. Each test starts its own
// processes, on ports they choose, with its own topics, groups and
// database, so none sees another's data.
const parallel = 4

// pageTurn keeps the page test (holding it) and the tests that run beside
// each other (sharing it) apart: Chromium's timing suffers most on a busy
// machine, so only the contract test, the longest, runs beside the page
// test. A test waiting for its turn holds one of the parallel slots.
var pageTurn sync.RWMutex

// runBesideOthers runs t in parallel with the package's other tests, but
// not beside the page test.
func runBesideOthers(t *testing.T) {
	t.Parallel()
	pageTurn.RLock()
	t.Cleanup(pageTurn.RUnlock) // registered first, so after the processes stopped
}

// runBesideContract runs t (the page test) in parallel with the contract
// test only: the others wait for it, and it for those already running.
func runBesideContract(t *testing.T) {
	t.Parallel()
	pageTurn.Lock()
	t.Cleanup(pageTurn.Unlock)
}

// commands are the binaries the tests start, built once for the package.
var commands = []string{"producers/cmd/ingest", "consumers/cmd/writer", "query-api/cmd/api",
	"consumers/cmd/sealer", "consumers/cmd/forwarder"}

var binDir string

var buildAll = sync.OnceValues(func() (map[string]string, error) {
	return proctest.Build(binDir, commands...)
})

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", fmt.Sprint(parallel))
	}
	dir, err := os.MkdirTemp("", "audittrail-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build returns the path of each binary the tests start, by command name
// (ingest, writer, api, sealer, forwarder); the first call builds them
// all, the others wait for it.
func build(t *testing.T) map[string]string {
	t.Helper()
	bins, err := buildAll()
	require.NoError(t, err)
	return bins
}
