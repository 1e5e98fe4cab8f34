// Package main is the dlq command; it lists and replays the dead letters of
// the writer and of the forwarder.
//
//	dlq writer list        [-reason substr] [-limit n]
//	dlq writer replay      (-all | -at partition:offset[,partition:offset...]) [-reason substr] [-dry-run]
//	dlq forwarder list     [-all] [-workspace ws_1] [-group audittrail-forwarder-replay]
//	dlq forwarder replay   [-workspace ws_1] [-group audittrail-forwarder-replay]
//
// The writer's subcommands also take -brokers, -topic and -to over the
// configuration; -h lists a subcommand's flags. Both areas read the
// dead-letter topic by offset and join no consumer group; listing moves
// nothing. Configuration comes from AUDITTRAIL_* variables (see
// docs/configuration.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = "usage: dlq writer|forwarder list|replay [flags] (dlq writer list -h for flags)"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "dlq")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, log)
	switch {
	case err == nil:
	case len(os.Args) > 1 && os.Args[1] == "forwarder":
		log.Error("replay stopped", "err", err)
	default:
		fmt.Fprintln(os.Stderr, "dlq:", err)
	}
	os.Exit(code)
}

// run executes one subcommand; it returns the exit code (2 for usage and
// configuration errors). Letters and results go to out, flag help and
// summaries to summary.
func run(ctx context.Context, args []string, out, summary io.Writer, log *slog.Logger) (int, error) {
	if len(args) < 2 || (args[1] != "list" && args[1] != "replay") {
		return 2, errors.New(usage)
	}
	switch args[0] {
	case "writer":
		return runWriter(ctx, args[1], args[2:], out, summary)
	case "forwarder":
		return runForwarder(ctx, args[1], args[2:], out, summary, log)
	}
	return 2, errors.New(usage)
}
