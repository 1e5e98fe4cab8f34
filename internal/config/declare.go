package config

// The declaration of a configuration variable: its name, who reads it, its
// default, what it accepts and what it means, from which its parsing, its
// validation message, the unknown-variable check and docs/configuration.md
// all derive.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Var is what every declaration holds.
type Var struct {
	Name string
	// Readers are the services or tools that read the variable, as the
	// documentation shows them ("writer", "api, forwarder", "scripts").
	Readers string
	// Doc is the variable's one-line meaning.
	Doc string
	// Accepts describes the accepted values in words where the type's
	// bounds do not ("host:port", "letters, digits and underscores").
	Accepts string
}

// Errorf returns the error for a value of the variable that is not
// accepted: NAME=value: want <want>.
func (v Var) Errorf(value any, want string) error {
	switch x := value.(type) {
	case string:
		return fmt.Errorf("%s=%q: want %s", v.Name, x, want)
	case time.Duration:
		return fmt.Errorf("%s=%s: want %s", v.Name, FormatDuration(x), want)
	}
	return fmt.Errorf("%s=%v: want %s", v.Name, value, want)
}

// Invalid returns the error for a value that is not what Accepts says.
func (v Var) Invalid(value any) error { return v.Errorf(value, v.Accepts) }

// Refused returns the error for a value that is not what Accepts says,
// without the value (a secret).
func (v Var) Refused() error { return fmt.Errorf("%s: want %s", v.Name, v.Accepts) }

// empty returns the error for a required variable left empty.
func (v Var) empty(want string) error {
	return fmt.Errorf("%s is empty: want %s", v.Name, want)
}

// String is a text variable. With Values, only those are accepted; with
// Required, the empty string is not.
type String struct {
	Var
	Default  string
	Values   []string
	Required bool
}

// Get returns the variable's value, or Default when unset or empty.
func (v String) Get(e *Env) string { return v.GetOr(e, v.Default) }

// GetOr returns the variable's value, or def when unset or empty.
func (v String) GetOr(e *Env, def string) string { return e.str(v.Name, def) }

// Check returns an error naming the variable when s is not accepted.
func (v String) Check(s string) error {
	switch {
	case s == "" && v.Required:
		return v.empty(v.accepts())
	case len(v.Values) > 0 && !slices.Contains(v.Values, s):
		return v.Errorf(s, v.accepts())
	}
	return nil
}

func (v String) accepts() string {
	if len(v.Values) > 0 {
		return oneOf(v.Values)
	}
	return v.Accepts
}

func (v String) defaultText() string { return v.Default }

// List is a comma-separated list; items are trimmed and empty ones dropped.
type List struct {
	Var
	Default  string // comma-separated
	Required bool
}

// Get returns the variable's items, or those of Default when unset.
func (v List) Get(e *Env) []string { return split(e.str(v.Name, v.Default)) }

// Check returns an error naming the variable when a required list is empty.
func (v List) Check(items []string) error {
	if len(items) == 0 && v.Required {
		return v.empty(v.accepts())
	}
	return nil
}

func (v List) accepts() string     { return v.Accepts }
func (v List) defaultText() string { return v.Default }

// Int is an integer variable accepted within [Min, Max]; NoMax leaves it
// unbounded above. Note, when set, follows the bounds in messages and docs;
// Accepts, when set, replaces them.
type Int struct {
	Var
	Default, Min, Max int
	NoMax             bool
	Note              string
}

// Get returns the variable's value, or Default when unset.
func (v Int) Get(e *Env) int { return v.GetOr(e, v.Default) }

// GetOr returns the variable's value, or def when unset.
func (v Int) GetOr(e *Env, def int) int {
	return parse(e, v.Name, def, strconv.Atoi, "an integer, "+v.accepts())
}

// Check returns an error naming the variable and its bounds when n is
// outside them.
func (v Int) Check(n int) error {
	if n < v.Min || (!v.NoMax && n > v.Max) {
		return v.Errorf(n, v.accepts())
	}
	return nil
}

func (v Int) accepts() string {
	if v.Accepts != "" {
		return v.Accepts
	}
	return bounds(strconv.Itoa(v.Min), strconv.Itoa(v.Max), v.NoMax, v.Note)
}

func (v Int) defaultText() string { return strconv.Itoa(v.Default) }

// Bool is a true/false variable.
type Bool struct {
	Var
	Default bool
}

// Get returns the variable's value, or Default when unset.
func (v Bool) Get(e *Env) bool { return parse(e, v.Name, v.Default, strconv.ParseBool, v.accepts()) }

func (v Bool) accepts() string     { return "true or false" }
func (v Bool) defaultText() string { return strconv.FormatBool(v.Default) }

// Duration is a Go duration ("500ms", "5s") accepted within [Min, Max];
// NoMax leaves it unbounded above. Note follows the bounds in messages and
// docs; Accepts, when set, replaces them (bounds that depend on another
// setting are checked by the component with Errorf).
type Duration struct {
	Var
	Default, Min, Max time.Duration
	NoMax             bool
	Note              string
}

// Get returns the variable's value, or Default when unset.
func (v Duration) Get(e *Env) time.Duration { return v.GetOr(e, v.Default) }

// GetOr returns the variable's value, or def when unset.
func (v Duration) GetOr(e *Env, def time.Duration) time.Duration {
	return parse(e, v.Name, def, time.ParseDuration, `a duration such as "500ms" or "5s", `+v.accepts())
}

// Check returns an error naming the variable and its bounds when d is
// outside them.
func (v Duration) Check(d time.Duration) error {
	if d < v.Min || (!v.NoMax && d > v.Max) {
		return v.Errorf(d, v.accepts())
	}
	return nil
}

func (v Duration) accepts() string {
	if v.Accepts != "" {
		return v.Accepts
	}
	return bounds(FormatDuration(v.Min), FormatDuration(v.Max), v.NoMax, v.Note)
}

func (v Duration) defaultText() string { return FormatDuration(v.Default) }

// FormatDuration writes d as an operator would: "1h", "250ms", "1m30s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// bounds describes [min, max] (or min and above), with note in parentheses.
func bounds(min, max string, noMax bool, note string) string {
	s := min + "-" + max
	if noMax {
		s = "at least " + min
	}
	if note != "" {
		s += " (" + note + ")"
	}
	return s
}

// oneOf writes values as "a, b or c".
func oneOf(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// declaration is what the registry knows of each declared variable.
type declaration interface {
	variable() Var
	defaultText() string
	accepts() string
}

func (v Var) variable() Var { return v }

// registry holds every declaration in declaration order (files in name
// order). It is complete once the package's variables are initialized.
var registry []declaration

// declare registers d and returns it.
func declare[D declaration](d D) D {
	registry = append(registry, d)
	return d
}

// Variable documents one declared configuration variable.
type Variable struct {
	Name, Readers, Default, Accepts, Description string
}

// Variables lists every declared variable, in declaration order. A
// variable set in the environment but missing here is reported by
// CheckUnknown as a likely typo.
var Variables []Variable

// byName indexes Variables.
var byName map[string]int

// Lookup returns the declared variable called name.
func Lookup(name string) (Variable, bool) {
	i, ok := byName[name]
	if !ok {
		return Variable{}, false
	}
	return Variables[i], true
}

func declared(name string) bool { _, ok := byName[name]; return ok }

func init() {
	Variables = make([]Variable, len(registry))
	byName = make(map[string]int, len(registry))
	for i, d := range registry {
		v := d.variable()
		Variables[i] = Variable{Name: v.Name, Readers: v.Readers, Default: d.defaultText(), Accepts: d.accepts(), Description: v.Doc}
		byName[v.Name] = i
	}
}
