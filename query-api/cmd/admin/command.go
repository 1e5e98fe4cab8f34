package main

// Parsing a command line into one request of the admin API; every value
// is checked here first, with a message naming the flag.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/query-api/admin"
)

var workspacePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)

// command is one request to send.
type command struct {
	base, token  string
	method, path string
	body         map[string]any
	timeout      time.Duration
}

const usage = `name a command:
  retention list | retention get | retention set
  hold place | hold release
  restore
(admin <command> -h for its flags)`

// parse reads the command line; env looks up the environment.
func parse(args []string, env func(string) (string, bool)) (*command, error) {
	name := strings.Join(args[:min(2, len(args))], " ")
	if len(args) > 0 && args[0] == "restore" {
		name = "restore"
	}
	rest := args[min(len(strings.Fields(name)), len(args)):]
	fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", lookup(env, config.AdminURL.Name, config.AdminURL.Default), "admin API base URL (default "+config.AdminURL.Name+")")
	tokenFile := fs.String("token-file", "", "file holding your operator token (default: your entry of "+config.AdminTokens.Name+")")
	who := fs.String("operator", "", "your name in "+config.AdminTokens.Name+" (required when it has several entries)")
	ws := fs.String("workspace", "", "the workspace id")
	days := fs.Int("days", 0, fmt.Sprintf("retention in days, %d-%d", admin.MinDays, admin.MaxDays))
	reason := fs.String("reason", "", fmt.Sprintf("why (recorded in the trail), at most %d characters", admin.MaxReasonLength))
	day := fs.String("day", "", "the archived UTC day, YYYY-MM-DD")
	until := fs.String("until", "", "the UTC day the restored events expire, YYYY-MM-DD")
	c := &command{timeout: 30 * time.Second}
	need := map[string]bool{}
	switch name {
	case "retention list":
		c.method, c.path = http.MethodGet, "/admin/v1/retention"
	case "retention get":
		c.method, need["workspace"] = http.MethodGet, true
	case "retention set":
		c.method, need["workspace"], need["days"] = http.MethodPut, true, true
	case "hold place", "hold release":
		c.method, need["workspace"], need["reason"] = http.MethodPut, true, true
	case "restore":
		c.method, c.timeout = http.MethodPost, 10*time.Minute
		need["workspace"], need["day"], need["until"], need["reason"] = true, true, true, true
	default:
		return nil, errors.New(usage)
	}
	if err := fs.Parse(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected argument %q (values go in flags)", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range []string{"workspace", "days", "reason", "day", "until"} {
		if set[f] && !need[f] && !(f == "reason" && name == "retention set") {
			return nil, fmt.Errorf("flag -%s: not used by %s", f, fs.Name())
		}
	}
	if err := check(need, *ws, *days, *reason, *day, *until); err != nil {
		return nil, err
	}
	switch name {
	case "retention get":
		c.path = "/admin/v1/workspaces/" + *ws + "/retention"
	case "retention set":
		c.path, c.body = "/admin/v1/workspaces/"+*ws+"/retention", map[string]any{"days": *days, "reason": *reason}
	case "hold place", "hold release":
		c.path = "/admin/v1/workspaces/" + *ws + "/legal-hold"
		c.body = map[string]any{"hold": name == "hold place", "reason": *reason}
	case "restore":
		c.path = "/admin/v1/workspaces/" + *ws + "/archive/restore"
		c.body = map[string]any{"day": *day, "until": *until, "reason": *reason}
	}
	var err error
	if c.base, err = checkURL(*base); err != nil {
		return nil, err
	}
	c.token, err = token(*tokenFile, *who, env)
	return c, err
}

// check validates the flags a command needs.
func check(need map[string]bool, ws string, days int, reason, day, until string) error {
	switch {
	case need["workspace"] && !workspacePattern.MatchString(ws):
		return errors.New("flag -workspace: required, 1-128 letters, digits, '.', '_', ':' or '-'")
	case need["days"] && (days < admin.MinDays || days > admin.MaxDays):
		return fmt.Errorf("flag -days: required, a whole number of days from %d to %d", admin.MinDays, admin.MaxDays)
	case need["reason"] && strings.TrimSpace(reason) == "":
		return fmt.Errorf("flag -reason: required, why (recorded in the trail)")
	case utf8.RuneCountInString(reason) > admin.MaxReasonLength:
		return fmt.Errorf("flag -reason: at most %d characters", admin.MaxReasonLength)
	}
	for _, d := range []struct{ flag, v string }{{"day", day}, {"until", until}} {
		if need[d.flag] {
			if _, err := time.Parse(time.DateOnly, d.v); err != nil {
				return fmt.Errorf("flag -%s: required, a UTC day as YYYY-MM-DD", d.flag)
			}
		}
	}
	return nil
}

// checkURL accepts https, and http to a loopback address only: the token
// must not cross a network in the clear.
func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("flag -url (%s): want http(s)://host[:port] without credentials or query", config.AdminURL.Name)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("flag -url (%s): plain http only to a loopback address; use https to reach %s", config.AdminURL.Name, u.Hostname())
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// token returns the operator token: the file's content, or the token of
// the operator's entry of AUDITTRAIL_ADMIN_TOKENS (the only one, or the
// one named by -operator), so that the change is recorded under the name
// of whoever makes it.
func token(file, who string, env func(string) (string, bool)) (string, error) {
	if file != "" {
		if who != "" {
			return "", errors.New("flag -operator: not used with -token-file (the token names the operator)")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("flag -token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if len(t) < admin.MinTokenLen {
			return "", fmt.Errorf("flag -token-file: the file must hold one operator token of at least %d characters", admin.MinTokenLen)
		}
		return t, nil
	}
	entries := strings.Split(lookup(env, config.AdminTokens.Name, ""), ",")
	var names []string
	found := ""
	for _, e := range entries {
		name, t, ok := strings.Cut(strings.TrimSpace(e), ":")
		name, t = strings.TrimSpace(name), strings.TrimSpace(t)
		if !ok || len(t) < admin.MinTokenLen {
			continue
		}
		names = append(names, name)
		if name == who || (who == "" && len(entries) == 1) {
			found = t
		}
	}
	switch {
	case len(names) == 0:
		return "", fmt.Errorf("no operator token: set %s (name:token) or pass -token-file", config.AdminTokens.Name)
	case found != "":
		return found, nil
	case who == "":
		return "", fmt.Errorf("flag -operator: required, %s has several operators (%s): name yours", config.AdminTokens.Name, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("flag -operator: %q is not in %s (%s)", who, config.AdminTokens.Name, strings.Join(names, ", "))
}

func lookup(env func(string) (string, bool), name, def string) string {
	if v, ok := env(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}
