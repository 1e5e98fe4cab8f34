package main

// The faults and the failover: a broker and a writer killed under load,
// how long the cluster and the writer group took to recover.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// assigned reads each writer's assigned-partitions gauge (-1: no answer).
func (d *drill) assigned(ctx context.Context) []int {
	out := make([]int, len(d.writers))
	for i, w := range d.writers {
		v, ok := w.metric(ctx, "audittrail_writer_assigned_partitions")
		out[i] = -1
		if ok {
			out[i] = int(v)
		}
	}
	return out
}

// exercise runs the load and the faults and measures failover and recovery.
func (d *drill) exercise(ctx context.Context, rep *report) error {
	per := d.o.partitions / writers
	if err := d.balancedAtStart(ctx, rep, per); err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithTimeout(ctx, d.o.load)
	defer stopLoad()
	d.watch = watchStore(ctx, d.ch, d.db)
	loadStart := time.Now()
	loadDone := make(chan struct{})
	go func() { d.load.run(loadCtx, d.o.rate); close(loadDone) }()

	select {
	case <-time.After(d.o.faultAt):
	case <-ctx.Done():
		return ctx.Err()
	case <-loadDone:
		return errors.New("load ended before the fault")
	}
	node, victim, err := d.victims(ctx, rep)
	if err != nil {
		return err
	}
	vr, _ := victim.metric(ctx, "audittrail_writer_rows_inserted_total")
	d.victimRows = int(vr)
	killAt := time.Now()
	if err := d.cl.kill(node); err != nil {
		return err
	}
	victim.signal(syscall.SIGKILL)

	var wg sync.WaitGroup
	var brokerErr, writerErr error
	brokerBack, writerBack := make(chan struct{}), make(chan struct{})
	var backOnce [2]sync.Once
	back := func(i int, c chan struct{}) func() { return func() { backOnce[i].Do(func() { close(c) }) } }
	defer back(0, brokerBack)()
	defer back(1, writerBack)()
	rctx, cancelRecovery := context.WithCancel(ctx)
	defer cancelRecovery()
	caughtUp := d.recovery(rctx, brokerBack, writerBack)
	wg.Go(func() { brokerErr = d.brokerFailover(ctx, rep, node, killAt, back(0, brokerBack)) })
	wg.Go(func() { writerErr = d.writerFailover(ctx, rep, victim, per, killAt, back(1, writerBack)) })
	wg.Wait()
	if err := errors.Join(brokerErr, writerErr); err != nil {
		stopLoad()
		<-loadDone
		return err
	}
	settled := time.Now()
	rep.IngestGap = d.load.longestGap(killAt, settled)
	logf("broker and writer back, ISR complete and partitions even %s after the kill; waiting for the load to end",
		settled.Sub(killAt).Round(100*time.Millisecond))
	rep.CaughtUp = <-caughtUp
	<-loadDone
	rep.LoadRan = time.Since(loadStart)
	rep.LatP50, rep.LatP99, rep.LatMax = d.load.latency()
	return nil
}

// balancedAtStart waits until each writer holds its share of the
// partitions and records the groups as they were before the faults.
func (d *drill) balancedAtStart(ctx context.Context, rep *report, per int) error {
	if _, err := waitFor(ctx, 60*time.Second, func() bool {
		a := d.assigned(ctx)
		return a[0] == per && a[1] == per && a[2] == per
	}); err != nil {
		return fmt.Errorf("writers not balanced at start: %v", d.assigned(ctx))
	}
	wg0, err := describeGroup(ctx, d.adm, d.writerGroup)
	if err != nil {
		return fmt.Errorf("describe writer group: %w", err)
	}
	rep.WritersBefore = fmt.Sprint(d.assigned(ctx))
	rep.WriterGroupBefore = wg0.String()
	if fg, err := describeGroup(ctx, d.adm, d.fwdGroup); err == nil {
		rep.ForwarderGroupBefore = fg.String()
	}
	return nil
}

// victims picks the broker to kill, the writer group's coordinator, and
// the writer to kill, the second, and says which roles the broker has.
func (d *drill) victims(ctx context.Context, rep *report) (int32, *proc, error) {
	g, err := describeGroup(ctx, d.adm, d.writerGroup)
	if err != nil {
		return 0, nil, fmt.Errorf("describe writer group: %w", err)
	}
	node := g.Coordinator
	roles := []string{"coordinator of the writer group"}
	if ql, err := quorumLeader(ctx, d.kcl); err == nil {
		if ql == node {
			roles = append(roles, "KRaft quorum leader")
		} else {
			roles = append(roles, fmt.Sprintf("quorum leader is node %d", ql))
		}
	}
	if st, err := topicState(ctx, d.adm, d.topic, -1); err == nil {
		roles = append(roles, fmt.Sprintf("leader of %d/%d partitions", st.LedBy[node], st.Partitions))
	}
	victim := d.writers[1]
	rep.KilledBroker = fmt.Sprintf("node %d (%s)", node, strings.Join(roles, ", "))
	rep.KilledWriter = victim.name
	logf("SIGKILL broker node %d (%s) and %s", node, strings.Join(roles, ", "), victim.name)
	return node, victim, nil
}

// recovery measures from the moment the broker and the writer are both
// back until every event accepted before that moment is stored (-1: not
// within o.settle).
func (d *drill) recovery(ctx context.Context, brokerBack, writerBack <-chan struct{}) <-chan time.Duration {
	caughtUp := make(chan time.Duration, 1)
	go func() {
		<-brokerBack
		<-writerBack
		cleared := time.Now()
		acc, _ := d.load.snapshot()
		at, err := waitFor(ctx, d.o.settle, func() bool {
			got, err := drillkit.Visible(ctx, d.ch, d.db)
			return err == nil && missing(acc, got) == 0
		})
		if err != nil {
			caughtUp <- -1
			return
		}
		caughtUp <- at.Sub(cleared)
	}()
	return caughtUp
}

// brokerFailover waits until the killed broker's partitions have new
// leaders, restarts it after o.brokerDown (then calls back) and waits
// until it rejoined every ISR.
func (d *drill) brokerFailover(ctx context.Context, rep *report, node int32, killAt time.Time, back func()) error {
	leaders, err := waitFor(ctx, 60*time.Second, func() bool {
		st, err := topicState(ctx, d.adm, d.topic, node)
		return err == nil && st.Led == st.Partitions
	})
	if err != nil {
		return fmt.Errorf("partitions of the killed broker got no new leader: %w", err)
	}
	rep.LeaderFailover = leaders.Sub(killAt)
	if err := sleepUntil(ctx, killAt.Add(d.o.brokerDown)); err != nil {
		return err
	}
	restart := time.Now()
	if err := d.cl.start(fmt.Sprint(node)); err != nil {
		return err
	}
	rep.BrokerDown = time.Since(killAt)
	rep.BrokerRestart = time.Since(restart)
	back()
	isr, err := waitFor(ctx, 120*time.Second, func() bool {
		st, err := topicState(ctx, d.adm, d.topic, -1)
		return err == nil && st.FullISR == st.Partitions
	})
	if err != nil {
		return fmt.Errorf("the restarted broker did not rejoin every ISR: %w", err)
	}
	rep.ISRRestored = isr.Sub(restart)
	return nil
}

// writerFailover waits until the surviving writers took over the killed
// one's partitions, restarts it after o.writerDown (then calls back) and
// waits until it got its share back.
func (d *drill) writerFailover(ctx context.Context, rep *report, victim *proc, per int, killAt time.Time, back func()) error {
	survivors := func(a []int) int { return a[0] + a[2] }
	took, err := waitFor(ctx, 90*time.Second, func() bool {
		a := d.assigned(ctx)
		return a[0] > per && a[2] > per && survivors(a) == d.o.partitions
	})
	if err != nil {
		return fmt.Errorf("the surviving writers did not take over (assigned %v): %w", d.assigned(ctx), err)
	}
	rep.WriterFailover = took.Sub(killAt)
	rep.WritersDuring = fmt.Sprint(d.assigned(ctx))
	if g, err := describeGroup(ctx, d.adm, d.writerGroup); err == nil {
		rep.WriterGroupDuring = g.String()
	}
	if err := sleepUntil(ctx, killAt.Add(d.o.writerDown)); err != nil {
		return err
	}
	restart := time.Now()
	rep.WriterDown = restart.Sub(killAt)
	if err := victim.start(); err != nil {
		return err
	}
	back()
	rejoined, err := waitFor(ctx, 90*time.Second, func() bool {
		a := d.assigned(ctx)
		return a[0] == per && a[1] == per && a[2] == per
	})
	if err != nil {
		return fmt.Errorf("the restarted writer did not get its share back (assigned %v): %w", d.assigned(ctx), err)
	}
	rep.WriterRejoin = rejoined.Sub(restart)
	rep.Rebalanced = true
	return nil
}
