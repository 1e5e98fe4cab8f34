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

// integer returns the variable as an integer.
func (e *Env) integer(name string, def int) int {
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

// boolean returns the variable as a boolean (true/false/1/0).
func (e *Env) boolean(name string, def bool) bool {
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

// duration returns the variable as a Go duration such as "500ms" or "5s".
func (e *Env) duration(name string, def time.Duration) time.Duration {
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
