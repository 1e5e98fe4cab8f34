// Package main is the forwarder-dlq command, which lists or replays the
// forwarding dead letters.
//
// Dead letters are events a workspace's source or alert webhook rejected,
// that exhausted their retries, or that were too large. Replayed events go
// through the workspace's current settings; those that fail again are
// appended to the dead-letter topic again. -list shows the letters still
// outstanding (not yet replayed by the replay group); -list -all shows every
// letter still in the topic with a last column "outstanding" or "replayed".
// Listing moves no group. Configuration comes from AUDITTRAIL_* variables
// (see docs/configuration.md).
//
//	forwarder-dlq [-list [-all]] [-workspace ws_1] [-group audittrail-forwarder-replay]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "forwarder-dlq")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, log)
	if err != nil {
		log.Error("replay stopped", "err", err)
	}
	os.Exit(code)
}

// run lists or replays; it returns the exit code (2 for usage and
// configuration errors). Dead letters are listed on out, the summary on
// summary.
func run(ctx context.Context, args []string, out, summary io.Writer, log *slog.Logger) (int, error) {
	fs := flag.NewFlagSet("forwarder-dlq", flag.ContinueOnError)
	fs.SetOutput(summary)
	list := fs.Bool("list", false, "list the dead letters not replayed yet (workspace, event id, event, target, reason) without replaying")
	all := fs.Bool("all", false, "with -list: list the replayed dead letters too, with a status column (outstanding, replayed)")
	ws := fs.String("workspace", "", "replay (or list) only this workspace (others are kept in the dead-letter topic)")
	group := fs.String("group", "", "consumer group remembering replay progress (default: <forwarder group>-replay)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("unexpected argument %q (flags: -list, -all, -workspace, -group)", fs.Arg(0))
	}
	if *all && !*list {
		return 2, errors.New("-all lists: use it with -list")
	}
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	fc := forward.FromEnv(env, kc.Topic)
	if err := errors.Join(env.Err(), config.CheckUnknown(), kc.Validate(), fc.Validate()); err != nil {
		return 2, err
	}
	kc.ClientID = "audittrail-forwarder-dlq"
	st, err := forward.Replay(ctx, fc, forward.Deps{KafkaOpts: kc.Options(), Log: log, Now: time.Now},
		forward.ReplayOptions{Group: *group, Workspace: *ws, DryRun: *list, All: *all, Out: out})
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(summary, "listed %d, delivered %d, dropped by current settings %d, kept in the dead-letter topic %d\n",
		st.Listed, st.Delivered, st.Dropped, st.Requeued)
	return 0, nil
}
