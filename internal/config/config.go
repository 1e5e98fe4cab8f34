// Package config binds AUDITTRAIL_* environment variables to component
// configuration. Each component owns a Config struct with defaults and a
// Validate method; this package only reads and parses values, collecting
// every error so that a misconfigured service says everything at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix is the prefix of every environment variable the product reads.
const Prefix = "AUDITTRAIL_"

// Env reads typed values from environment variables. Values that fail to
// parse are recorded and reported by Err; the default is returned for them.
type Env struct {
	lookup func(string) (string, bool)
	seen   map[string]bool
	errs   []error
}

// FromOS returns an Env reading the process environment.
func FromOS() *Env { return FromMap(nil) }

// FromMap returns an Env reading m, or the process environment when m is nil.
func FromMap(m map[string]string) *Env {
	lookup := os.LookupEnv
	if m != nil {
		lookup = func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	return &Env{lookup: lookup, seen: map[string]bool{}}
}

func (e *Env) get(name string) (string, bool) {
	e.seen[name] = true
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (e *Env) fail(name, v, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want %s", name, v, want))
}

// String returns the variable's value, or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// List returns the comma-separated values of the variable, trimmed, empty
// items dropped; def (comma-separated) when unset.
func (e *Env) List(name, def string) []string {
	v := e.String(name, def)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Int returns the variable as an integer.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, v, "an integer")
		return def
	}
	return n
}

// Bool returns the variable as a boolean (true/false/1/0).
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, v, "true or false")
		return def
	}
	return b
}

// Duration returns the variable as a Go duration such as "500ms" or "5s".
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.fail(name, v, `a duration such as "500ms" or "5s"`)
		return def
	}
	return d
}

// Err reports every value that failed to parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Unknown returns the AUDITTRAIL_* variables present in environ that no
// component reads (see Known), sorted: most likely typos.
func Unknown(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, Prefix) && !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// CheckUnknown returns an error naming every AUDITTRAIL_* variable in the
// process environment that the product does not read.
func CheckUnknown() error {
	if u := Unknown(os.Environ()); len(u) > 0 {
		return fmt.Errorf("unknown configuration variables %s: check the spelling against the README's configuration table", strings.Join(u, ", "))
	}
	return nil
}

// known lists every variable any component reads; the README's
// configuration table documents each.
var known = map[string]bool{}

// Known registers variable names as read by some component. Components call
// it from package-level var initialisers next to their Config.
func Known(names ...string) bool {
	for _, n := range names {
		known[n] = true
	}
	return true
}
