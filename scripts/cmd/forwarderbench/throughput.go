package main

// The throughput figure: the forwarder and its floor drain the same
// backlog in alternating rounds.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// throughput drains the backlog rounds times with each side, alternating
// (the floor, then the forwarder), each from the start with a group of its
// own, and prints every round's rates, their medians and the median of the
// rounds' ratios. The last round's forwarder keeps running (its group has
// read the backlog); stop stops it and returns its error.
func (b *bench) throughput(ctx context.Context, rounds, backlog int, calls [][]byte) (stop func() error, err error) {
	want := int64(expectedDelivered(backlog, b.workspaces, b.names))
	if n := int64(countCalls(calls)); n != want {
		return nil, fmt.Errorf("forward.Process passes %d of %d events, the filters' arithmetic %d", n, backlog, want)
	}
	fmt.Printf("throughput: a backlog of %d events (%d pass the filters), drained %d times by each side, alternating\n", backlog, want, rounds)
	fmt.Printf("  %-6s %16s %16s %8s %26s %22s %24s\n", "round", "floor ev/s", "forwarder ev/s", "ratio", "ratio after 1st delivery",
		"ev/request (floor/fwd)", "CPU µs/ev (floor/fwd)")
	var floors, fwds, ratios, steady, flCPU, fwCPU []float64
	for r := 1; r <= rounds; r++ {
		fl, err := b.floorRound(ctx, r, calls, want)
		if err != nil {
			return nil, fmt.Errorf("floor round %d: %w", r, err)
		}
		profiled, err := b.profile(r == rounds)
		if err != nil {
			return nil, err
		}
		fw, stopF, err := b.forwarderRound(ctx, r, want)
		profiled()
		if err != nil {
			return nil, fmt.Errorf("forwarder round %d: %w", r, err)
		}
		if r < rounds {
			if err := stopF(); err != nil {
				return nil, err
			}
		} else {
			stop = stopF
		}
		floor, fwd := float64(want)/fl.total.Seconds(), float64(want)/fw.total.Seconds()
		floors, fwds, ratios = append(floors, floor), append(fwds, fwd), append(ratios, fwd/floor)
		steady = append(steady, fw.steady/fl.steady)
		fmt.Printf("  %-6d %16.0f %16.0f %8.2f %26.2f %22s %24s\n", r, floor, fwd, fwd/floor, fw.steady/fl.steady,
			fmt.Sprintf("%.0f / %.0f", fl.perRequest, fw.perRequest), fmt.Sprintf("%.1f / %.1f", us(fl.cpuPerEvent), us(fw.cpuPerEvent)))
		flCPU, fwCPU = append(flCPU, us(fl.cpuPerEvent)), append(fwCPU, us(fw.cpuPerEvent))
	}
	fmt.Printf("  %-6s %16.0f %16.0f %8.2f %26.2f %22s %24s   (ratios: medians of the rounds' ratios; goal >= 0.70)\n",
		"median", median(floors), median(fwds), median(ratios), median(steady), "", fmt.Sprintf("%.1f / %.1f", median(flCPU), median(fwCPU)))
	fmt.Println("  events forwarded per second, from the side's start (group join included) until the sink has every passing event;")
	fmt.Println("  ratio after 1st delivery: the same without start-up, from the sink's first event of the side to its last;")
	fmt.Println("  CPU µs/ev: this process's user+system time over the side's drain (getrusage) per event, the sink's included;")
	fmt.Println("  floor: plain franz-go group consumer + POST of the same track calls (computed by forward.Process before the clock),")
	fmt.Printf("  batched per workspace (up to %d per request, flushed after each poll), sent by forward.Sender from %d goroutines\n",
		forward.Defaults().BatchEvents, forward.Defaults().Workers)
	return stop, nil
}

// profile starts the CPU profile of -cpuprofile when on is true and
// returns what stops it.
func (b *bench) profile(on bool) (stop func(), err error) {
	if !on || b.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(b.cpuProfile)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// forwarderRound starts a forwarder with a new group and returns its
// drain (until the sink received want more events) and what stops it.
func (b *bench) forwarderRound(ctx context.Context, round int, want int64) (drain, func() error, error) {
	f, err := b.forwarder(b.newGroup("fwd", round))
	if err != nil {
		return drain{}, nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	stopped := make(chan error, 1)
	at := b.mark()
	start := time.Now()
	go func() {
		err := f.Run(fctx)
		stopped <- err
		if err == nil {
			err = errors.New("forwarder stopped")
		}
		ran <- err
	}()
	stop := func() error { cancel(); return <-stopped }
	el, err := b.waitReceived(ctx, at, want, start, ran)
	if err != nil {
		_ = stop()
		return drain{}, nil, err
	}
	return el, stop, nil
}

// drain is how long a side took to deliver the backlog's passing events.
type drain struct {
	total time.Duration // from the side's start
	// perRequest is the mean number of events per request the sink took
	// (the side's requests: none of the other side's are in flight).
	perRequest float64
	// cpuPerEvent is this process's CPU time (user and system) per event
	// delivered: the side, the sink and the idle producer.
	cpuPerEvent time.Duration
	// steady is the rate from the first delivery the sink saw to the
	// last: the side's start-up (group join, settings) left out.
	steady float64
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// mark is where the sink's counts and this process's CPU time stand
// before a side starts.
type mark struct {
	events, requests int64
	cpu              time.Duration
}

func (b *bench) mark() mark {
	return mark{events: b.received.Load(), requests: b.requests.Load(), cpu: benchkit.SelfCPU()}
}

// waitReceived waits until the sink received want events more than at
// (taken before this side started) and returns the drain since start; it
// returns early with what failed says or when ctx ends.
func (b *bench) waitReceived(ctx context.Context, at mark, want int64, start time.Time, failed <-chan error) (drain, error) {
	base, target := at.events, at.events+want
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var first time.Time
	var atFirst int64
	for {
		n := b.received.Load()
		if first.IsZero() && n > base {
			first, atFirst = time.Now(), n
		}
		if n >= target {
			break
		}
		select {
		case err := <-failed:
			return drain{}, err
		case <-ctx.Done():
			return drain{}, ctx.Err()
		case <-tick.C:
		}
	}
	d := drain{total: time.Since(start), cpuPerEvent: (benchkit.SelfCPU() - at.cpu) / time.Duration(want)}
	if reqs := b.requests.Load() - at.requests; reqs > 0 {
		d.perRequest = float64(b.received.Load()-base) / float64(reqs)
	}
	if span := time.Since(first); span > 0 {
		d.steady = float64(target-atFirst) / span.Seconds()
	}
	return d, nil
}

func countCalls(calls [][]byte) int {
	n := 0
	for _, c := range calls {
		if c != nil {
			n++
		}
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
