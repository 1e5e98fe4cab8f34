package main

// dlq forwarder: the forwarding dead letters, listed or replayed.
//
// Dead letters are events a workspace's source or alert webhook rejected,
// that exhausted their retries, or that were too large. Replayed events go
// through the workspace's current settings; those that fail again are
// appended to the dead-letter topic again. list shows the letters still
// outstanding (not yet replayed by the replay group); list -all shows every
// letter still in the topic with a last column "outstanding" or "replayed".
// Listing moves no group.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/topics"
)

// runForwarder lists or replays (cmd) the forwarding dead letters; it
// returns the exit code (2 for usage and configuration errors). Dead
// letters are listed on out, the summary on summary.
func runForwarder(ctx context.Context, cmd string, args []string, out, summary io.Writer, log *slog.Logger) (int, error) {
	fs := flag.NewFlagSet("dlq forwarder "+cmd, flag.ContinueOnError)
	fs.SetOutput(summary)
	all := fs.Bool("all", false, "with list: list the replayed dead letters too, with a status column (outstanding, replayed)")
	ws := fs.String("workspace", "", "replay (or list) only this workspace (others are kept in the dead-letter topic)")
	group := fs.String("group", "", "consumer group remembering replay progress (default: <forwarder group>-replay)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected argument %q (flags: -all, -workspace, -group)", fs.Arg(0))
	}
	list := cmd == "list"
	if *all && !list {
		return 2, errors.New("-all lists: use it with dlq forwarder list")
	}
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	fc := forward.FromEnv(env, kc.Topic)
	if err := errors.Join(env.Err(), config.CheckUnknown(), kc.Validate(), fc.Validate()); err != nil {
		return 2, err
	}
	kc.ClientID = "audittrail-dlq-forwarder"
	st, err := forward.Replay(ctx, fc, forward.Deps{KafkaOpts: kc.Options(), Log: log, Now: time.Now},
		forward.ReplayOptions{Group: *group, Workspace: *ws, DryRun: list, All: *all, Out: out})
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(summary, "listed %d, delivered %d, dropped by current settings %d, kept in the dead-letter topic %d\n",
		st.Listed, st.Delivered, st.Dropped, st.Requeued)
	return 0, nil
}
