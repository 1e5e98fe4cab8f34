package benchkit

// Profiling a run of a benchmark.

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// ProfileRun starts a CPU profile into file (nothing when file is "") and
// returns what stops it; it also writes the heap profile to file.heap0 at
// the start and file.heap at the end, whose difference (`go tool pprof
// -sample_index=alloc_space -diff_base file.heap0 file.heap`) is what the
// run allocated. `go tool pprof` merges the rounds' CPU profiles. A
// profiled run's CPU figures include the profiler's work.
func ProfileRun(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	heap := func(name string) {
		runtime.GC() // the profile counts allocations up to the last collection
		if f, err := os.Create(name); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	heap(file + ".heap0")
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close(); heap(file + ".heap") }, nil
}
