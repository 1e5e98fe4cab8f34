package forward

// Replay of the forwarding dead letters (the dlq forwarder command): each
// letter is re-delivered with its workspace's current settings or appended
// to the dead-letter topic again (package deadletter); a dry run only
// lists them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
	"github.com/audittrail/audittrail/internal/backoff"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

// ReplayOptions configure Replay.
type ReplayOptions struct {
	// Group is the consumer group that remembers how far the dead-letter
	// topic was replayed. Its offsets are read and committed directly:
	// neither Replay nor a listing joins it.
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
// the replay group always advances, one commit per letter. It reads the
// dead-letter topic by offset, from the group's committed offsets, and
// joins no group. It returns when it reached the end offsets seen at start
// or ctx ends.
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

	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, d.KafkaOpts...), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	group := deadletter.NewGroup(cl, o.Group, cfg.DeadLetterTopic)
	replayed, err := group.Replayed(ctx)
	if err != nil {
		return st, err
	}
	sender := NewSender(cfg.RequestTimeout, 4, cfg.Egress.Policy(), d.Now)
	parker := deadletter.NewParker(cl, cfg.DeadLetterTopic, deliveryBackoff(cfg), d.Log)
	var stepErr error
	err = deadletter.Read(ctx, d.KafkaOpts, cfg.DeadLetterTopic, replayed, func(l deadletter.Letter) bool {
		stepErr = replayOne(ctx, cfg, parker, sender, ws, o, l.Record, &st)
		if stepErr == nil {
			stepErr = group.Done(ctx, l)
		}
		return stepErr == nil
	})
	if stepErr != nil {
		return st, stepErr
	}
	return st, err
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

// replayOne re-delivers one dead letter with the workspace's current
// settings, or appends it to the dead-letter topic again (requeue) when it
// cannot; a letter the settings now drop is only counted.
func replayOne(ctx context.Context, cfg Config, parker *deadletter.Parker, sender *Sender, wss *Workspaces, o ReplayOptions, r *kgo.Record, st *ReplayStats) error {
	wsID := string(r.Key)
	kind := header(r, topics.HeaderForwardTarget)
	reason := header(r, topics.HeaderDLQReason)
	ev, decErr := event.Decode(r.Value)
	fmt.Fprintf(o.Out, "%s\t%s\t%s\t%s\t%s\n", wsID, ev.ID, ev.Event, kind, reason)
	if o.Workspace != "" && wsID != o.Workspace {
		st.Requeued++
		return parker.Requeue(ctx, r, reason)
	}
	if decErr != nil {
		st.Requeued++
		return parker.Requeue(ctx, r, "undecodable: "+decErr.Error())
	}
	ws := wss.Get(wsID)
	var send func() error
	switch kind {
	case TargetAlert:
		if ws == nil || !ws.Alerts.Enabled {
			st.Requeued++
			return parker.Requeue(ctx, r, "replay: alerts are off for the workspace")
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
			return parker.Requeue(ctx, r, "replay: forwarding is off for the workspace")
		}
		out, err := Process(ws, &ev)
		if err != nil {
			st.Requeued++
			return parker.Requeue(ctx, r, "too_large: "+err.Error())
		}
		if out.Dropped != "" {
			st.Dropped++
			return nil
		}
		send = func() error { return sender.SendBatch(ctx, ws.Forwarding.Target, [][]byte{out.Call}) }
	}
	attempt := 0
	var final error // the failure that ends the retries
	err := deliveryBackoff(cfg).Retry(ctx, func() error {
		attempt++
		err := send()
		var de *DeliveryError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &de) || !de.Retryable || attempt >= cfg.MaxAttempts:
			final = err
			return backoff.Stop(err)
		case de.RetryAfter > 0:
			return backoff.After(min(de.RetryAfter, cfg.RetryAfterMax), err)
		}
		return err
	}, nil)
	switch {
	case final != nil:
		st.Requeued++
		return parker.Requeue(ctx, r, "replay failed: "+final.Error())
	case err != nil:
		return err
	}
	st.Delivered++
	return nil
}

// list writes the dead letters not yet replayed by o.Group (all of them
// with o.All, marked) without joining or moving any group.
func list(ctx context.Context, cfg Config, d Deps, o ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	cl, err := kgo.NewClient(d.KafkaOpts...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	replayed, err := deadletter.NewGroup(cl, o.Group, cfg.DeadLetterTopic).Replayed(ctx)
	if err != nil {
		return st, err
	}
	from := replayed
	if o.All {
		from = nil
	}
	err = deadletter.Read(ctx, d.KafkaOpts, cfg.DeadLetterTopic, from, func(l deadletter.Letter) bool {
		if o.Workspace == "" || string(l.Key) == o.Workspace {
			fmt.Fprintln(o.Out, listLine(l, o.All, replayed))
			st.Listed++
		}
		return true
	})
	return st, err
}

// listLine is the listing's line for dead letter l: workspace, event id,
// event name, target kind and reason, and with all its status.
func listLine(l deadletter.Letter, all bool, replayed map[int32]int64) string {
	ev, _ := event.Decode(l.Value)
	line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", l.Key, ev.ID, ev.Event, l.Header(topics.HeaderForwardTarget), l.Reason)
	if all {
		status := "outstanding"
		if l.Offset < replayed[l.Partition] {
			status = "replayed"
		}
		line += "\t" + status
	}
	return line
}
