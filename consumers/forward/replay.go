package forward

// Replay of the forwarding dead letters (the forwarder-dlq command): each
// letter is re-delivered with its workspace's current settings or appended
// to the dead-letter topic again; a dry run only lists them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Group is the consumer group that remembers how far the dead-letter
	// topic was replayed.
	Group string
	// Workspace, when set, replays only that workspace's dead letters;
	// the others are appended to the dead-letter topic again unchanged.
	Workspace string
	// DryRun lists the dead letters without delivering or committing:
	// those not replayed yet by Group (at or past its committed offsets),
	// of Workspace when set. Replayed letters (below the committed
	// offsets) were delivered, dropped by the settings or appended again
	// as new letters.
	DryRun bool
	// All lists the replayed letters too, each line ending with a status
	// column, "outstanding" or "replayed" (DryRun only).
	All bool
	// Out receives one line per dead letter.
	Out io.Writer
}

// ReplayStats counts what Replay did.
type ReplayStats struct {
	Delivered, Dropped, Requeued, Listed int
}

// Replay re-delivers the forwarding dead letters present when it starts:
// each is run through its workspace's current settings (tracking plan,
// filters) and sent to the current target with retries. A dead letter that
// fails again, or whose workspace has forwarding turned off, is appended to
// the dead-letter topic again with the new reason, so nothing is lost and
// the replay group always advances. It returns when it reached the end
// offsets seen at start or ctx ends.
func Replay(ctx context.Context, cfg Config, d Deps, o ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	if o.Group == "" {
		o.Group = cfg.Group + "-replay"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if o.DryRun {
		return list(ctx, cfg, d, o)
	}
	ws, stop, err := replaySettings(ctx, cfg, d)
	if err != nil {
		return st, err
	}
	defer stop()

	opts := append([]kgo.Opt{}, d.KafkaOpts...)
	opts = append(opts, kgo.ConsumerGroup(o.Group), kgo.ConsumeTopics(cfg.DeadLetterTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	remaining, err := toReplay(ctx, kadm.NewClient(cl), cfg.DeadLetterTopic, o.Group)
	if err != nil {
		return st, err
	}
	sender := NewSender(cfg.RequestTimeout, 4, cfg.Egress.Policy(), d.Now)
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		var done []*kgo.Record
		var stepErr error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || stepErr != nil {
				return
			}
			if r.Offset < end {
				stepErr = replayOne(ctx, cfg, cl, sender, ws, o, r, &st)
				if stepErr == nil {
					done = append(done, r)
				}
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
		if len(done) > 0 {
			if err := cl.CommitRecords(ctx, done...); err != nil {
				return st, fmt.Errorf("commit replay progress: %w", err)
			}
		}
		if stepErr != nil {
			return st, stepErr
		}
	}
	return st, nil
}

// replaySettings reads the workspaces' current settings from the settings
// topic and keeps them current until stop is called.
func replaySettings(ctx context.Context, cfg Config, d Deps) (ws *Workspaces, stop func(), err error) {
	ws = NewWorkspaces(d.Log)
	table, err := kvtopic.New(d.KafkaOpts, cfg.SettingsTopic, ws.Apply)
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	tctx, tcancel := context.WithCancel(ctx)
	tdone := make(chan struct{})
	go func() { defer close(tdone); _ = table.Run(tctx) }()
	stop = func() { tcancel(); <-tdone; ws.Close() }
	if err := table.WaitReady(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	if err := ws.WaitIdle(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return ws, stop, nil
}

// toReplay returns the end offset, seen now, of each partition of the
// dead-letter topic that holds letters the group has not replayed yet.
func toReplay(ctx context.Context, adm *kadm.Client, topic, group string) (map[int32]int64, error) {
	ends, err := listOffsets(ctx, adm, "end", topic)
	if err != nil {
		return nil, err
	}
	remaining := map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) {
		if l.Offset > 0 {
			remaining[l.Partition] = l.Offset
		}
	})
	// Partitions already replayed up to their end need no reading.
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		committed.Each(func(c kadm.OffsetResponse) {
			if c.Topic == topic && c.At >= remaining[c.Partition] {
				delete(remaining, c.Partition)
			}
		})
	}
	return remaining, nil
}

// listOffsets lists the "start" or "end" offsets of topic's partitions.
func listOffsets(ctx context.Context, adm *kadm.Client, which, topic string) (kadm.ListedOffsets, error) {
	list := adm.ListEndOffsets
	if which == "start" {
		list = adm.ListStartOffsets
	}
	offs, err := list(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list %s offsets of %s: %w", which, topic, err)
	}
	return offs, nil
}

// replayOne re-delivers one dead letter with the workspace's current
// settings, or appends it to the dead-letter topic again (requeue) when it
// cannot; a letter the settings now drop is only counted.
func replayOne(ctx context.Context, cfg Config, cl *kgo.Client, sender *Sender, wss *Workspaces, o ReplayOptions, r *kgo.Record, st *ReplayStats) error {
	wsID := string(r.Key)
	kind := header(r, topics.HeaderForwardTarget)
	reason := header(r, topics.HeaderDLQReason)
	ev, decErr := event.Decode(r.Value)
	fmt.Fprintf(o.Out, "%s\t%s\t%s\t%s\t%s\n", wsID, ev.ID, ev.Event, kind, reason)
	if o.Workspace != "" && wsID != o.Workspace {
		st.Requeued++
		return requeue(ctx, cl, cfg, r, reason)
	}
	if decErr != nil {
		st.Requeued++
		return requeue(ctx, cl, cfg, r, "undecodable: "+decErr.Error())
	}
	ws := wss.Get(wsID)
	var send func() error
	switch kind {
	case TargetAlert:
		if ws == nil || !ws.Alerts.Enabled {
			st.Requeued++
			return requeue(ctx, cl, cfg, r, "replay: alerts are off for the workspace")
		}
		if !ws.Alerts.Triggers(ev.Event) || skipsSoftFailure(ws, &ev) {
			// The current settings would not alert on it: no longer on the
			// alert list, or a failure that hard_failures_only leaves out.
			st.Dropped++
			return nil
		}
		text := AlertText(&ev)
		send = func() error { return sender.SendAlert(ctx, ws.Alerts.WebhookURL, text) }
	default:
		if ws == nil || !ws.Forwarding.Enabled {
			st.Requeued++
			return requeue(ctx, cl, cfg, r, "replay: forwarding is off for the workspace")
		}
		out, err := Process(ws, &ev)
		if err != nil {
			st.Requeued++
			return requeue(ctx, cl, cfg, r, "too_large: "+err.Error())
		}
		if out.Dropped != "" {
			st.Dropped++
			return nil
		}
		send = func() error { return sender.SendBatch(ctx, ws.Forwarding.Target, [][]byte{out.Call}) }
	}
	backoff := cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := send()
		if err == nil {
			st.Delivered++
			return nil
		}
		var de *DeliveryError
		if !errors.As(err, &de) || !de.Retryable || attempt >= cfg.MaxAttempts {
			st.Requeued++
			return requeue(ctx, cl, cfg, r, "replay failed: "+err.Error())
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if de.RetryAfter > 0 {
			wait = min(de.RetryAfter, cfg.RetryAfterMax)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, cfg.RetryMax)
	}
}

// requeue appends a copy of r to the dead-letter topic with a new reason.
func requeue(ctx context.Context, cl *kgo.Client, cfg Config, r *kgo.Record, reason string) error {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
	replays := 0
	for _, h := range r.Headers {
		switch h.Key {
		case topics.HeaderDLQReason:
			continue
		case "dlq_replays":
			replays, _ = strconv.Atoi(string(h.Value))
			continue
		}
		hs = append(hs, h)
	}
	hs = append(hs, kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: []byte(truncate(reason, 1024))},
		kgo.RecordHeader{Key: "dlq_replays", Value: []byte(strconv.Itoa(replays + 1))})
	cp := &kgo.Record{Topic: cfg.DeadLetterTopic, Key: r.Key, Value: r.Value, Headers: hs}
	if err := cl.ProduceSync(ctx, cp).FirstErr(); err != nil {
		return fmt.Errorf("requeue dead letter: %w", err)
	}
	return nil
}

// list writes the dead letters not yet replayed by o.Group (all of them
// with o.All, marked) without joining or moving any group.
func list(ctx context.Context, cfg Config, d Deps, o ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	opts := append([]kgo.Opt{}, d.KafkaOpts...)
	cl, err := kgo.NewClient(append(opts, kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	replayed, remaining, from, err := toList(ctx, kadm.NewClient(cl), cfg.DeadLetterTopic, o)
	if err != nil || len(from) == 0 {
		return st, err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{cfg.DeadLetterTopic: from})
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return st, fmt.Errorf("read %s: %w", cfg.DeadLetterTopic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if o.Workspace != "" && string(r.Key) != o.Workspace {
				return
			}
			fmt.Fprintln(o.Out, listLine(r, o.All, replayed))
			st.Listed++
		})
	}
	return st, nil
}

// toList returns what list reads of the dead-letter topic: per partition,
// the offset it starts from and the end offset seen now (only for those
// with letters to list), and the offset below which letters are replayed.
func toList(ctx context.Context, adm *kadm.Client, topic string, o ReplayOptions) (replayed, remaining map[int32]int64, from map[int32]kgo.Offset, err error) {
	starts, err := listOffsets(ctx, adm, "start", topic)
	if err != nil {
		return nil, nil, nil, err
	}
	ends, err := listOffsets(ctx, adm, "end", topic)
	if err != nil {
		return nil, nil, nil, err
	}
	committed, err := adm.FetchOffsets(ctx, o.Group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never replayed: every letter is outstanding
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetch the offsets of group %s: %w", o.Group, err)
	}
	replayed = map[int32]int64{} // letters below are replayed
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Topic == topic && c.Err == nil && c.At > 0 {
			replayed[c.Partition] = c.At
		}
	})
	remaining = map[int32]int64{}
	from = map[int32]kgo.Offset{}
	ends.Each(func(l kadm.ListedOffset) {
		begin := int64(0)
		if s, ok := starts.Lookup(topic, l.Partition); ok {
			begin = s.Offset
		}
		if !o.All {
			begin = max(begin, replayed[l.Partition])
		}
		if begin < l.Offset {
			remaining[l.Partition] = l.Offset
			from[l.Partition] = kgo.NewOffset().At(begin)
		}
	})
	return replayed, remaining, from, nil
}

// listLine is the listing's line for dead letter r: workspace, event id,
// event name, target kind and reason, and with all its status.
func listLine(r *kgo.Record, all bool, replayed map[int32]int64) string {
	ev, _ := event.Decode(r.Value)
	line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Key, ev.ID, ev.Event,
		header(r, topics.HeaderForwardTarget), header(r, topics.HeaderDLQReason))
	if all {
		status := "outstanding"
		if r.Offset < replayed[r.Partition] {
			status = "replayed"
		}
		line += "\t" + status
	}
	return line
}
