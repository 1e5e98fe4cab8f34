package main

// The benchmark's own slice of the servers, the writer under test and the
// calm and flood runs, interleaved.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// bench is the run's database, topic, writer input and event source.
type bench struct {
	*benchkit.Bench
	o     options
	topic string
	em    *emitter.Emitter
	gen   *loadgen.Generator
	genMu sync.Mutex
}

func run(ctx context.Context, o options) (*Report, error) {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	kb, err := benchkit.Open(ctx, "floodbench_"+sfx, 4, time.Minute)
	if err != nil {
		return nil, err
	}
	defer kb.Close()
	b := &bench{Bench: kb, o: o, topic: "floodbench-" + sfx}
	group := "floodbench-" + sfx
	defer func() {
		_, _ = b.Admin.DeleteTopics(context.Background(), b.topic, b.topic+"-dlq")
		_, _ = b.Admin.DeleteGroup(context.Background(), group)
	}()
	// One partition: every workspace shares it.
	if err := kafkaconn.EnsureTopics(ctx, b.Client, 1, nil, b.topic); err != nil {
		return nil, err
	}
	w, err := b.StartWriter(ctx, b.Conn, b.DB, b.topic, group, 0)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	if b.em, err = emitter.New(emitter.Config{Topic: b.topic}, b.Kafka.Options(), nil); err != nil {
		return nil, err
	}
	defer b.em.Close()
	b.gen, _ = loadgen.New(loadgen.Config{Workspaces: 10, ZipfS: 1.1, Seed: 7}, time.Now)
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}

	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), Neighbours: o.neighbours, Rate: o.rate,
		FloodRate: o.rate * o.factor, Duration: o.duration.String(), BatchAge: w.Config.BatchAge.String(),
		Target: "flood p99 <= 2 x calm p99"}
	if err := b.runs(ctx, rep); err != nil {
		return nil, err
	}
	rep.CalmP50ms, rep.CalmP99ms = medians(rep.Runs, "calm")
	rep.FloodP50ms, rep.FloodP99ms = medians(rep.Runs, "flood")
	rep.Ratio = rep.FloodP99ms / rep.CalmP99ms
	return rep, nil
}

// runs measures the calm and flood runs, alternating which comes first,
// and appends them to rep.
func (b *bench) runs(ctx context.Context, rep *Report) error {
	tries := 0 // runs started, each with its own workspaces
	for p := range b.o.pairs {
		modes := []bool{false, true}
		if p%2 == 1 {
			modes = []bool{true, false}
		}
		for _, flood := range modes {
			r, err := b.measureAgain(ctx, &tries, flood)
			if err != nil {
				return err
			}
			logf("run %d %s: neighbours p50 %.0f ms p99 %.0f ms max %.0f ms (%d events; flood %d at %.0f/s)",
				len(rep.Runs)+1, r.Mode, r.P50ms, r.P99ms, r.Maxms, r.Events, r.Flood, r.FloodRate)
			rep.Runs = append(rep.Runs, r)
		}
	}
	return nil
}

// measureAgain measures a run; a run the servers interrupted (a restart
// elsewhere) is run again, up to three times: its figures would measure
// the restart. tries counts the runs started.
func (b *bench) measureAgain(ctx context.Context, tries *int, flood bool) (Run, error) {
	for attempt := 0; ; attempt++ {
		r, err := b.measure(ctx, *tries, flood)
		*tries++
		if !errors.Is(err, errInterrupted) || attempt == 2 {
			return r, err
		}
		logf("%v; running it again", err)
		if _, err := b.waitStored(ctx, map[string]int{"warmup": 1}, 2*time.Minute); err != nil {
			return Run{}, err
		}
	}
}

// warmUp sends one event and waits until it is stored: the writer has
// joined its group and the first insert's connection is open.
func (b *bench) warmUp(ctx context.Context) error {
	ev := b.event("warmup")
	if err := b.em.Emit(ctx, ev); err != nil {
		return err
	}
	_, err := b.waitStored(ctx, map[string]int{"warmup": 1}, time.Minute)
	return err
}

func (b *bench) event(ws string) event.Event {
	b.genMu.Lock()
	ev := b.gen.Next()
	b.genMu.Unlock()
	ev.WorkspaceID = ws
	ev.ID = ""
	return ev
}
