package trackingplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// Plan values.
const (
	Allow = "allow"
	Block = "block"
	Omit  = "omit"
)

// MaxPlanEvents bounds the number of events a plan may list.
const MaxPlanEvents = 2000

// Plan is a tracking plan: the expected events with a JSON Schema for their
// properties, and what to do with events and properties that are not
// planned and with events that violate their schema.
type Plan struct {
	Events map[string]PlanEvent `json:"events"`
	// UnplannedEvents: "allow" (default) or "block".
	UnplannedEvents string `json:"unplanned_events"`
	// UnplannedProperties: "allow" (default) or "omit" (properties not
	// declared in the event's schema "properties" are removed).
	UnplannedProperties string `json:"unplanned_properties"`
	// OnViolation: "allow" (default: forward and record the violation) or
	// "block" (drop the event and record the violation).
	OnViolation string `json:"on_violation"`
}

// PlanEvent is one planned event.
type PlanEvent struct {
	// Properties is a JSON Schema for the event's properties object.
	Properties json.RawMessage `json:"properties"`
}

// CompiledPlan checks events against a plan. The zero value (and nil)
// allows everything. It is safe for concurrent use.
type CompiledPlan struct {
	events              map[string]*plannedEvent
	blockUnplanned      bool
	omitUnplannedProps  bool
	blockViolations     bool
	unplannedEventsMode string
}

type plannedEvent struct {
	schema  *jsonschema.Schema
	planned map[string]bool // top-level keys of the schema's "properties"
	// bounded: no value can make checking the schema exceed MaxCheckWork
	// (see repeats), so Check does not count.
	bounded bool
	// quick: the schema in a form that tells most conforming values
	// without the validator (nil: the validator checks every value).
	quick *quickSchema
}

// Compile validates p and compiles every schema once. Errors are
// *FieldError naming the field, e.g. "events.Source Created.properties".
// Each distinct pattern is compiled once per call (patternCache).
func (p Plan) Compile() (*CompiledPlan, error) {
	return p.compile(newPatternCache())
}

func (p Plan) compile(patterns *patternCache) (*CompiledPlan, error) {
	defer patterns.close()
	cp := &CompiledPlan{events: make(map[string]*plannedEvent, len(p.Events))}
	var err error
	if cp.blockUnplanned, err = choice("unplanned_events", p.UnplannedEvents, Allow, Block); err != nil {
		return nil, err
	}
	if cp.omitUnplannedProps, err = choice("unplanned_properties", p.UnplannedProperties, Allow, Omit); err != nil {
		return nil, err
	}
	if cp.blockViolations, err = choice("on_violation", p.OnViolation, Allow, Block); err != nil {
		return nil, err
	}
	if len(p.Events) > MaxPlanEvents {
		return nil, fieldErr("events", "at most %d events", MaxPlanEvents)
	}
	names := make([]string, 0, len(p.Events))
	for n := range p.Events {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		field := "events." + name + ".properties"
		if strings.TrimSpace(name) == "" || len(name) > 200 {
			return nil, fieldErr("events", "event names must be 1-200 characters")
		}
		pe, err := compileEvent(field, p.Events[name].Properties, patterns)
		if err != nil {
			return nil, err
		}
		cp.events[name] = pe
	}
	return cp, nil
}

// choice returns whether v is the second (non-default) option; empty means
// the first.
func choice(field, v, def, other string) (bool, error) {
	switch v {
	case "", def:
		return false, nil
	case other:
		return true, nil
	}
	return false, fieldErr(field, "%q: want %q or %q", v, def, other)
}

// schemaBase is the name under which a plan's schema is compiled. It is
// absolute so that references never resolve against the server's working
// directory, and it is removed from every error message.
const (
	schemaBase = "https://plan.audittrail.invalid/"
	schemaLoc  = schemaBase + "schema.json"
)

// noLoader refuses every external reference: plans are self-contained.
type noLoader struct{}

func (noLoader) Load(string) (any, error) { return nil, errExternalRef }

var errExternalRef = errors.New("external references are not allowed")

func compileEvent(field string, raw json.RawMessage, patterns *patternCache) (*plannedEvent, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		// No schema: any properties are valid, none is declared.
		return &plannedEvent{planned: map[string]bool{}}, nil
	}
	if len(raw) > 256<<10 {
		return nil, fieldErr(field, "schema larger than 256 KiB")
	}
	// Before compiling: a schema nested hundreds of levels deep takes
	// seconds to compile.
	if err := checkLimits(field, raw); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fieldErr(field, "not JSON")
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		if _, isBool := doc.(bool); !isBool {
			return nil, fieldErr(field, "a JSON Schema must be an object or a boolean")
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	c.UseRegexpEngine(patterns.compile)
	if err := c.AddResource(schemaLoc, doc); err != nil {
		return nil, fieldErr(field, "invalid JSON Schema: %s", schemaError(err))
	}
	sch, err := c.Compile(schemaLoc)
	if err != nil {
		return nil, fieldErr(field, "invalid JSON Schema: %s", schemaError(err))
	}
	if err := checkSchemaWork(sch); err != nil {
		return nil, fieldErr(field, "%v", err)
	}
	pe := &plannedEvent{schema: sch, planned: map[string]bool{}, bounded: MaxSchemaWork <= MaxCheckWork && !repeats(sch), quick: quickOf(doc)}
	if props, ok := obj["properties"].(map[string]any); ok {
		for k := range props {
			pe.planned[k] = true
		}
	}
	return pe, nil
}

// schemaError describes why a schema does not compile in the owner's
// terms: locations inside the schema, the reference that cannot be
// followed; never the compiler's names for things or its Go types.
func schemaError(err error) string {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	var lue *jsonschema.LoadURLError
	var pnf *jsonschema.JSONPointerNotFoundError
	var anf *jsonschema.AnchorNotFoundError
	var rxe *jsonschema.InvalidRegexError
	var msg string
	switch {
	case errors.As(err, &sve) && errors.As(sve.Err, &ve):
		// Sorted: the validator reports them in map order, and the
		// message is cut below, so unsorted the same schema could be
		// refused with another message each time.
		v := violations(ve)
		sort.Strings(v)
		msg = strings.Join(v, "; ")
	case errors.As(err, &lue):
		msg = fmt.Sprintf("reference %q: only references inside the schema (\"#/$defs/...\") are allowed", refName(lue.URL))
	case errors.As(err, &pnf):
		msg = fmt.Sprintf("reference %q points to nothing in the schema", refName(pnf.URL))
	case errors.As(err, &anf):
		msg = fmt.Sprintf("reference %q points to nothing in the schema", refName(anf.URL))
	case errors.As(err, &rxe):
		msg = fmt.Sprintf("%s: %q is not a valid regular expression", refName(rxe.URL), rxe.Regex)
		if errors.Is(rxe.Err, errRegexExpands) {
			msg = fmt.Sprintf("%s: %q: %v", refName(rxe.URL), rxe.Regex, rxe.Err)
		}
	default:
		msg = refName(firstLine(err.Error()))
	}
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	return msg
}

// refName shows a URL the compiler resolved against schemaLoc as the owner
// wrote it: "#/nope" rather than the compiler's absolute form.
func refName(s string) string {
	s = strings.ReplaceAll(s, schemaLoc, "")
	return strings.ReplaceAll(s, schemaBase, "")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Verdict is the outcome of checking one event against a plan.
type Verdict struct {
	// Drop: the event is blocked (unplanned, or violating with
	// on_violation "block").
	Drop bool
	// Unplanned: the event is not in the plan.
	Unplanned bool
	// Violations describe how the properties fail the event's schema
	// (empty when they conform).
	Violations []string
	// Omitted lists the properties removed as unplanned (sorted).
	Omitted []string
}

// Check checks an event's name and properties (a decoded JSON object; nil
// for none). When unplanned properties are omitted, props is modified in
// place. A nil plan allows everything. Properties whose check would exceed
// MaxCheckWork are not validated: they violate the plan (errTooCostly).
func (cp *CompiledPlan) Check(name string, props map[string]any) Verdict {
	if cp == nil {
		return Verdict{}
	}
	pe, ok := cp.events[name]
	if !ok {
		return Verdict{Drop: cp.blockUnplanned, Unplanned: true}
	}
	var v Verdict
	if pe.schema != nil {
		var doc any = props
		if props == nil {
			doc = map[string]any{}
		}
		v.Violations = pe.violations(doc)
		if len(v.Violations) > 0 && cp.blockViolations {
			v.Drop = true
			return v
		}
	}
	if cp.omitUnplannedProps {
		for k := range props {
			if !pe.planned[k] {
				v.Omitted = append(v.Omitted, k)
				delete(props, k)
			}
		}
		sort.Strings(v.Omitted)
	}
	return v
}

// Blocks reports whether Check drops every event named name, whatever its
// properties: the plan does not list it and blocks unplanned events. A
// nil plan blocks nothing.
func (cp *CompiledPlan) Blocks(name string) bool {
	return cp != nil && cp.blockUnplanned && !cp.Planned(name)
}

// violations checks doc against pe's schema: a value the quick form
// knows to conform has none, one too costly to check has errTooCostly,
// and the validator checks the others.
func (pe *plannedEvent) violations(doc any) []string {
	switch {
	case pe.bounded && pe.quick != nil && pe.quick.valid(doc):
		return nil
	case !pe.bounded && checkWork(pe.schema, doc, MaxCheckWork) > MaxCheckWork:
		return []string{errTooCostly}
	}
	if err := pe.schema.Validate(doc); err != nil {
		return violations(err)
	}
	return nil
}

// Planned reports whether the plan lists name.
func (cp *CompiledPlan) Planned(name string) bool {
	if cp == nil {
		return false
	}
	_, ok := cp.events[name]
	return ok
}

func violations(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			out = append(out, loc+": "+e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) > 20 {
		out = out[:20]
	}
	return out
}
