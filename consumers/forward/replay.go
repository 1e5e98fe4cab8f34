package forward

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
	ws := NewWorkspaces(d.Log)
	defer ws.Close()
	table, err := kvtopic.New(d.KafkaOpts, cfg.SettingsTopic, ws.Apply)
	if err != nil {
		return st, err
	}
	tctx, tcancel := context.WithCancel(ctx)
	tdone := make(chan struct{})
	go func() { defer close(tdone); _ = table.Run(tctx) }()
	defer func() { tcancel(); <-tdone }()
	if err := table.WaitReady(ctx); err != nil {
		return st, err
	}
	if err := ws.WaitIdle(ctx); err != nil {
		return st, err
	}

	opts := append([]kgo.Opt{}, d.KafkaOpts...)
	opts = append(opts, kgo.ConsumerGroup(o.Group), kgo.ConsumeTopics(cfg.DeadLetterTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, cfg.DeadLetterTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return st, fmt.Errorf("list end offsets of %s: %w", cfg.DeadLetterTopic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) {
		if l.Offset > 0 {
			remaining[l.Partition] = l.Offset
		}
	})
	// Partitions already replayed up to their end need no reading.
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, o.Group)
	if err == nil {
		committed.Each(func(c kadm.OffsetResponse) {
			if c.Topic == cfg.DeadLetterTopic && c.At >= remaining[c.Partition] {
				delete(remaining, c.Partition)
			}
		})
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
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, cfg.DeadLetterTopic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return st, fmt.Errorf("list start offsets of %s: %w", cfg.DeadLetterTopic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.DeadLetterTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return st, fmt.Errorf("list end offsets of %s: %w", cfg.DeadLetterTopic, err)
	}
	committed, err := adm.FetchOffsets(ctx, o.Group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never replayed: every letter is outstanding
	}
	if err != nil {
		return st, fmt.Errorf("fetch the offsets of group %s: %w", o.Group, err)
	}
	replayed := map[int32]int64{} // letters below are replayed
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Topic == cfg.DeadLetterTopic && c.Err == nil && c.At > 0 {
			replayed[c.Partition] = c.At
		}
	})
	remaining := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(l kadm.ListedOffset) {
		begin := int64(0)
		if s, ok := starts.Lookup(cfg.DeadLetterTopic, l.Partition); ok {
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
	if len(from) == 0 {
		return st, nil
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
			ev, _ := event.Decode(r.Value)
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Key, ev.ID, ev.Event,
				header(r, topics.HeaderForwardTarget), header(r, topics.HeaderDLQReason))
			if o.All {
				status := "outstanding"
				if r.Offset < replayed[r.Partition] {
					status = "replayed"
				}
				line += "\t" + status
			}
			fmt.Fprintln(o.Out, line)
			st.Listed++
		})
	}
	return st, nil
}
