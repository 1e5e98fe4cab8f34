// Package config declares every AUDITTRAIL_* environment variable once and
// binds them to component configuration. Each declaration (String, List,
// Int, Bool, Duration; one file per component) carries the name, who reads
// it, the default, the accepted values and the meaning; from it derive the
// parsing (Get), the validation message (Check, Invalid), the
// unknown-variable check (CheckUnknown) and docs/configuration.md
// (Markdown). Each component still owns a Config struct with Defaults and
// a Validate method built from its declarations. Values that fail to parse
// are collected so that a misconfigured service says everything at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Prefix is the prefix of every environment variable the product reads.
const Prefix = "AUDITTRAIL_"

// Env reads typed values from environment variables. Values that fail to
// parse are recorded and reported by Err; the default is returned for them.
type Env struct {
	lookup func(string) (string, bool)
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
	return &Env{lookup: lookup}
}

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (e *Env) fail(name, v, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want %s", name, v, want))
}

// str returns the variable's value, or def when unset or empty.
func (e *Env) str(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// split returns the comma-separated items of v, trimmed, empty items
// dropped.
func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parse returns the variable parsed by p, or def when unset or empty. A
// value p refuses is recorded with what is accepted (want), and def
// returned.
func parse[T any](e *Env, name string, def T, p func(string) (T, error), want string) T {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	x, err := p(v)
	if err != nil {
		e.fail(name, v, want)
		return def
	}
	return x
}

// Err reports every value that failed to parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Unknown returns the AUDITTRAIL_* variables present in environ that no
// component reads (see Variables), sorted: most likely typos.
func Unknown(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, Prefix) && !declared(k) {
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
		return fmt.Errorf("unknown configuration variables %s: check the spelling against docs/configuration.md", strings.Join(u, ", "))
	}
	return nil
}
