// Package main is the token command, which mints a read-API token.
//
// The token is HS256, signed with AUDITTRAIL_JWT_SECRET, for operators and
// scripts:
//
//	token -sub alice -email alice@example.com -workspace ws_demo=owner -ttl 24h
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/query-api/auth"
)

type workspaces map[string]string

func (w workspaces) String() string { return fmt.Sprint(map[string]string(w)) }
func (w workspaces) Set(s string) error {
	id, role, ok := strings.Cut(s, "=")
	if !ok || id == "" || role == "" {
		return errors.New("want workspace_id=role, e.g. ws_demo=owner")
	}
	w[id] = role
	return nil
}

func main() {
	ws := workspaces{}
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "subject (user id), required")
	name := fs.String("name", "", "display name")
	email := fs.String("email", "", "email")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime")
	fs.Var(ws, "workspace", "workspace_id=role (repeatable), e.g. ws_demo=owner")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	secret := config.JWTSecret.Get(config.FromOS())
	switch {
	case *sub == "":
		fail("flag -sub is required")
	case len(ws) == 0:
		fail("flag -workspace is required at least once (workspace_id=role)")
	case *ttl <= 0 || *ttl > 366*24*time.Hour:
		fail("flag -ttl must be between 1s and 8784h")
	case len(secret) < 32:
		fail(config.JWTSecret.Refused().Error())
	}
	tok, err := auth.Mint([]byte(secret), *sub, *name, *email, ws, *ttl, time.Now())
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(tok)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "token:", msg)
	os.Exit(2)
}
