package main

// The sink scenarios' forwarding: the settings that turn it on, which
// events the forwarder must deliver, and what the target received.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
	"github.com/twmb/franz-go/pkg/kgo"
)

// slowWorkspace is the workspace the sink-slow-workspace target is slow
// for: the busiest of the load, whose slow requests are nearly always in
// flight, so that the other workspaces of its partition would wait behind
// them if deliveries were serialized per partition.
func slowWorkspace() string {
	g, _ := loadgen.New(loadConfig(1), time.Now)
	return g.Workspace(0)
}

// configureForwarding turns forwarding on for every workspace of the load,
// to the sink, with no tracking plan and no filters: it writes the settings
// records that PUT /v1/workspaces/{ws}/forwarding writes, to the scenario's
// settings topic, before the forwarder starts (a forwarder loads every
// setting before it reads an event).
func (e *env) configureForwarding(ctx context.Context) error {
	if err := kvtopic.Ensure(ctx, e.servers.Kafka.Options(), e.settings); err != nil {
		return err
	}
	g, err := loadgen.New(loadConfig(1), time.Now)
	if err != nil {
		return err
	}
	e.workspaces = map[string]*forward.Workspace{}
	var recs []*kgo.Record
	now := time.Now().UTC()
	for i := range loadWorkspaces {
		ws := g.Workspace(i)
		f := trackingplan.Forwarding{Enabled: true, Target: trackingplan.Target{URL: e.sink.url, WriteKey: writeKeyPrefix + ws}}
		if err := f.Validate(); err != nil {
			return err
		}
		settings, err := json.Marshal(f)
		if err != nil {
			return err
		}
		rec, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: trackingplan.KindForwarding,
			UpdatedAt: now, UpdatedBy: "drill", Settings: settings})
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: e.settings, Key: []byte(trackingplan.Key(ws, trackingplan.KindForwarding)), Value: rec})
		e.workspaces[ws] = &forward.Workspace{ID: ws, Forwarding: f}
	}
	return e.producer.ProduceSync(ctx, recs...).FirstErr()
}

// isForwardable runs ev through its workspace's pipeline the way the
// forwarder does: an event it would drop or dead-letter does not count.
func (e *env) isForwardable(ev *event.Event) bool {
	ws := e.workspaces[ev.WorkspaceID]
	if ws == nil || !ws.Forwarding.Enabled {
		return false
	}
	out, err := forward.Process(ws, ev)
	return err == nil && out.Dropped == ""
}

// forwarded compares what the sink acknowledged with the forwardable
// accepted events, counts the forwarder's dead letters and runs the
// fault's own checks.
func (e *env) forwarded(ctx context.Context, sent, want map[string]bool, faultStart, faultCleared time.Time) (*forwarding, error) {
	got, firstAt := e.sink.snapshot()
	f := &forwarding{Forwardable: len(want), Unique: len(got), Fault: e.sink.describe()}
	for id, n := range got {
		f.Deliveries += n
		if !sent[id] {
			f.Unexpected++
		}
	}
	for id := range want {
		if got[id] == 0 {
			f.Missing++
		}
	}
	var err error
	if f.DeadLetters, err = e.deadLetters(ctx, e.fwdDLQ, 0); err != nil {
		return f, err
	}
	if err := e.sink.check(); err != nil {
		return f, err
	}
	if e.sink.kind == faultSlow {
		e.mu.Lock()
		posted := make(map[string]time.Time, len(e.postedAt))
		for k, v := range e.postedAt {
			posted[k] = v
		}
		e.mu.Unlock()
		desc, err := e.headOfLine(posted, firstAt, faultStart, faultCleared)
		f.Fault += "; " + desc
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// headOfLine checks the forwarder's promise that a slow target holds only
// its own workspace's queue: for the events posted while the slow
// workspace's requests took sinkSlowDelay, the other workspaces of its
// partition must have been acknowledged with a p99 latency (post to
// acknowledged) under half that delay.
func (e *env) headOfLine(posted, firstAt map[string]time.Time, from, to time.Time) (string, error) {
	slow := e.sink.slowWS
	part := emitter.Partitioner().ForTopic(e.topic)
	partition := func(ws string) int { return part.Partition(&kgo.Record{Key: []byte(ws)}, drillPartitions) }
	slowPart := partition(slow)
	var slowLat, sameLat, otherLat []time.Duration
	for id, t := range posted {
		at, ok := firstAt[id]
		if !ok || t.Before(from) || !t.Before(to) {
			continue
		}
		ws, _, _ := strings.Cut(id, "/")
		d := max(at.Sub(t), 0)
		switch {
		case ws == slow:
			slowLat = append(slowLat, d)
		case partition(ws) == slowPart:
			sameLat = append(sameLat, d)
		default:
			otherLat = append(otherLat, d)
		}
	}
	p99 := func(ds []time.Duration) time.Duration { return percentile(ds, 99) }
	desc := fmt.Sprintf("p99 post to acknowledged during it: %s %s, other workspaces of its partition %s (%d events), other partitions %s",
		slow, ms(p99(slowLat)), ms(p99(sameLat)), len(sameLat), ms(p99(otherLat)))
	if len(sameLat) == 0 {
		return desc, fmt.Errorf("no event of another workspace on %s's partition was posted during the fault", slow)
	}
	if p99(sameLat) >= sinkSlowDelay/2 {
		return desc, fmt.Errorf("head-of-line blocking: the other workspaces of %s's partition waited (p99 %s)", slow, ms(p99(sameLat)))
	}
	return desc, nil
}
