// Package main is the verify command, which checks a workspace's trail as
// an auditor would:
//
//	verify offline -export audit-trail.ndjson [-keys K]
//	verify online -workspace ws_1 [-trusted topic|state -state FILE] [-grace 10m]
//	verify monitor -state FILE (-topic | -api URL -token T -workspace ws_1,ws_2)
//
// offline checks a self-proving export (NDJSON rows and the signed
// manifest on its last line) with the public verifier keys alone. online
// reads ClickHouse: every stored row against its leaf, every leaf against
// a row (or retention), and the tree recomputed from the rows against a
// signed checkpoint, ClickHouse's own or one held outside it (the
// checkpoints topic, or a monitor's state file). monitor remembers the
// last checkpoint of each workspace in a state file and checks each new
// one against it: a rollback or a fork is reported.
//
// It prints one line per problem and exits 1 when there was any, 0 when
// none, 2 when it could not check (bad flags, unreachable servers).
// Keys come from -keys or AUDITTRAIL_VERIFIER_KEYS; the origin, the
// ClickHouse and Kafka servers and the retention from the AUDITTRAIL_*
// variables (docs/configuration.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs a subcommand and returns the exit status.
func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "verify: name a mode: offline, online or monitor (verify <mode> -h for its flags)")
		return 2
	}
	var rep result
	var err error
	switch args[0] {
	case "offline":
		rep, err = offline(args[1:])
	case "online":
		rep, err = online(ctx, args[1:])
	case "monitor":
		rep, err = monitor(ctx, args[1:])
	default:
		err = fmt.Errorf("unknown mode %q: use offline, online or monitor", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		return 2
	}
	return rep.print(os.Stdout)
}
