// Package main is the admin command, the operators' client of the admin
// API (query-api/admin):
//
//	admin retention list
//	admin retention get -workspace ws_1
//	admin retention set -workspace ws_1 -days 400 [-reason "contract 7"]
//	admin hold place -workspace ws_1 -reason "case 2026-114"
//	admin hold release -workspace ws_1 -reason "case closed"
//	admin restore -workspace ws_1 -day 2025-03-09 -until 2026-06-30 -reason "audit request 12"
//
// It calls AUDITTRAIL_ADMIN_URL (or -url) with the token of the first
// AUDITTRAIL_ADMIN_TOKENS entry, or the one in -token-file (never a flag
// value, which other users could read in the process list). Plain http is
// refused except to a loopback address. It prints the answer as JSON and
// exits 0; 1 when the API refused the request (the message names the
// flag); 2 on bad flags or when the API could not be reached.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// run runs one command and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	cmd, err := parse(args, env)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		return 2
	}
	out, err := cmd.do(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "admin:", err)
		if _, refused := err.(*refusedError); refused {
			return 1
		}
		return 2
	}
	fmt.Fprintln(stdout, out)
	return 0
}
