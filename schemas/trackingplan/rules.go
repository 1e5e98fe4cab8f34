package trackingplan

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
)

// EventNames decides whether settings may name an event: it returns nil for
// names from the catalogue and, where the deployment allows custom events
// for the workspace, for custom names in the catalogue's style, and an
// error saying why otherwise. A nil EventNames accepts every name.
type EventNames func(name string) error

// The ValidateNew methods apply the rules a setting must meet to be saved,
// on top of Validate and Compile: event names must be known, a filter needs
// a condition and uses properties only with a property action, secrets hold
// no control characters. Validate and Compile alone still accept settings
// saved before these rules, so a stored setting keeps working in the
// forwarder.

// ValidateNew checks f for saving: Validate, and no control characters in
// the write key.
func (f Forwarding) ValidateNew() error {
	if err := f.Validate(); err != nil {
		return err
	}
	if hasControl(f.Target.Name) {
		return fieldErr("target.name", "must not contain control characters")
	}
	for i, t := range f.SavedTargets {
		if hasControl(t.Name) {
			return fieldErr(fmt.Sprintf("saved_targets[%d].name", i), "must not contain control characters")
		}
		if hasControl(t.WriteKey) {
			return fieldErr(fmt.Sprintf("saved_targets[%d].write_key", i), "must not contain control characters (tab, newline, NUL, ESC, DEL and the like): paste the key exactly as issued")
		}
	}
	if hasControl(f.Target.WriteKey) {
		return fieldErr("target.write_key", "must not contain control characters (tab, newline, NUL, ESC, DEL and the like): paste the key exactly as issued")
	}
	return nil
}

// ValidateNew checks a for saving: Validate, and every listed event name
// accepted by names.
func (a Alerts) ValidateNew(names EventNames) error {
	if err := a.Validate(); err != nil {
		return err
	}
	for i, n := range a.Events {
		if err := checkName(names, n); err != nil {
			return fieldErr(fmt.Sprintf("events[%d]", i), "%s", err)
		}
	}
	return nil
}

// ValidateNew checks p for saving (call Compile as well): every planned
// event name accepted by names. The field is "events.<name>".
func (p Plan) ValidateNew(names EventNames) error {
	list := make([]string, 0, len(p.Events))
	for n := range p.Events {
		list = append(list, n)
	}
	sort.Strings(list)
	for _, n := range list {
		if strings.TrimSpace(n) == "" || len(n) > 200 {
			continue // Compile reports it
		}
		if err := checkName(names, n); err != nil {
			return fieldErr("events."+printable(n), "%s", err)
		}
	}
	return nil
}

// ValidateNew checks f for saving (call Compile as well): every filter has
// a condition (an empty one would match every event; "true" says so),
// properties are listed only for drop_properties and allow_properties, and
// every event name the condition compares event with (event == 'X',
// 'X' != event, event in ['X', 'Y']) is accepted by names.
func (f Filters) ValidateNew(names EventNames) error {
	var total uint64
	for i, fl := range f.Filters {
		at := func(s string) string { return fmt.Sprintf("filters[%d].%s", i, s) }
		if hasControl(fl.Name) {
			return fieldErr(at("name"), "must not contain control characters")
		}
		if strings.TrimSpace(fl.If) == "" {
			return fieldErr(at("if"), "required: a condition such as event == 'Source Created' (true matches every event)")
		}
		if len(fl.Properties) > 0 && fl.Action != ActionDropProperties && fl.Action != ActionAllowProperties {
			return fieldErr(at("properties"), "only for the drop_properties and allow_properties actions; %q ignores properties", fl.Action)
		}
		for _, n := range comparedEventNames(fl.If) {
			if err := checkName(names, n); err != nil {
				return fieldErr(at("if"), "%s", err)
			}
		}
		if !fl.Enabled {
			continue
		}
		c, err := estimatedCost(fl.If)
		if err != nil {
			return fieldErr(at("if"), "%s", err)
		}
		if total += c; total > MaxFilterSetCost {
			return fieldErr(at("if"), "the enabled conditions' estimated cost per event reaches %d with this one, over the limit of %d for all filters (a condition counts at most %d); make conditions cheaper (bound list sizes with size()) or use fewer", total, MaxFilterSetCost, filterCostBudget)
		}
	}
	return nil
}

func checkName(names EventNames, n string) error {
	if hasControl(n) || !utf8.ValidString(n) {
		return fmt.Errorf("event names contain no control characters")
	}
	if names == nil {
		return nil
	}
	return names(n)
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}

// printable replaces control characters, so a field name can be shown.
func printable(s string) string {
	if !hasControl(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return '?'
		}
		return r
	}, s)
}

// comparedEventNames returns the string literals expr compares the event
// variable with. It returns nothing for a condition that does not parse
// (Compile reports that).
func comparedEventNames(expr string) []string {
	if len(expr) > MaxExprLen {
		return nil
	}
	parsed, iss := celEnv.Parse(expr)
	if iss != nil && iss.Err() != nil {
		return nil
	}
	isEvent := func(e celast.Expr) bool {
		return e.Kind() == celast.IdentKind && e.AsIdent() == "event"
	}
	literal := func(e celast.Expr) (string, bool) {
		if e.Kind() != celast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().Value().(string)
		return s, ok
	}
	root := celast.NavigateAST(parsed.NativeRep())
	for _, c := range celast.MatchDescendants(root, celast.KindMatcher(celast.ComprehensionKind)) {
		if cx := c.AsComprehension(); cx.IterVar() == "event" || cx.IterVar2() == "event" {
			return nil // "event" is rebound inside: not the event's name
		}
	}
	var out []string
	calls := celast.MatchDescendants(root, celast.KindMatcher(celast.CallKind))
	for _, c := range calls {
		call := c.AsCall()
		args := call.Args()
		if len(args) != 2 {
			continue
		}
		switch call.FunctionName() {
		case operators.Equals, operators.NotEquals:
			for i, a := range args {
				if s, ok := literal(args[1-i]); ok && isEvent(a) {
					out = append(out, s)
				}
			}
		case operators.In:
			if isEvent(args[0]) && args[1].Kind() == celast.ListKind {
				for _, el := range args[1].AsList().Elements() {
					if s, ok := literal(el); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}
