package trackingplan

// The per-event decision of a workspace's forwarding settings: the
// hard-failure rule, the tracking plan and the destination filters, in
// that order. The forwarder runs it on every event it would send, and the
// read API's preview runs the same code over stored events.

import (
	"strings"
	"sync"

	sjson "github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
)

// Reasons an event is not sent (also the forwarder's metric label values).
const (
	DropNotFinal  = "not_final_failure"
	DropUnplanned = "unplanned_event"
	DropViolation = "violation"
	DropFilter    = "filter"
)

// Pipeline is the compiled decision of one workspace's settings. A zero
// Pipeline keeps every event. Safe for concurrent use.
type Pipeline struct {
	// HardFailuresOnly is the forwarding setting of that name.
	HardFailuresOnly bool
	Plan             *CompiledPlan
	Filters          *CompiledFilters
}

// Decision is what a Pipeline decided for one event.
type Decision struct {
	// Properties are the event's properties as they are to be sent (after
	// the plan and the property filters); nil when the event is dropped.
	// Their names, strings and numbers may share the memory of the
	// event's Properties, which must not change while they are used.
	Properties map[string]any
	// Dropped says why the event is not sent (one of the Drop constants),
	// "" when it is.
	Dropped string
	// Filter names the filter that dropped it.
	Filter string
	// Violations of the tracking plan (also when the event is sent).
	Violations []string
	// FilterErrors counts filter conditions that failed to evaluate.
	FilterErrors int
}

// Run decides ev: an unplanned event the plan blocks is dropped without
// reading its properties; then the hard-failures-only rule, the plan's
// checks and the filters, in order. Properties that are not a JSON object
// are taken as none.
func (p Pipeline) Run(ev *event.Event) Decision {
	var d Decision
	if p.Plan.Blocks(ev.Event) && (!p.HardFailuresOnly || !catalogue.IsFailure(ev.Event)) {
		d.Dropped = DropUnplanned
		return d
	}
	props, err := decodeProperties(ev.Properties, sjson.DontCopyString|sjson.DontCopyNumber)
	if err != nil {
		props = map[string]any{}
	}
	if p.HardFailuresOnly && !FinalFailure(ev.Event, props) {
		d.Dropped = DropNotFinal
		return d
	}
	v := p.Plan.Check(ev.Event, props)
	d.Violations = v.Violations
	if v.Drop {
		d.Dropped = DropViolation
		if v.Unplanned {
			d.Dropped = DropUnplanned
		}
		return d
	}
	in := filterInput(p.Filters, ev, props)
	f := p.Filters.Apply(&in.Input)
	in.release()
	d.FilterErrors = f.EvalErrors
	if f.Drop != "" {
		d.Dropped, d.Filter = DropFilter, f.Drop
		return d
	}
	d.Properties = props
	return d
}

// SkipsSoftFailure reports whether the hard-failures-only rule leaves ev
// out: a failure that will be retried.
func (p Pipeline) SkipsSoftFailure(ev *event.Event) bool {
	if !p.HardFailuresOnly {
		return false
	}
	props, _ := DecodeProperties(ev.Properties)
	return !FinalFailure(ev.Event, props)
}

// pipelineInput is what the filters see of one event, with maps of the
// event's fields that are reused: Apply reads them and keeps nothing.
type pipelineInput struct {
	Input
	actor, resource, context map[string]string
}

var pipelineInputs = sync.Pool{New: func() any {
	return &pipelineInput{actor: make(map[string]string, 4), resource: make(map[string]string, 3), context: make(map[string]string, 3)}
}}

// filterInput is what cf's conditions see of ev: the actor, resource and
// context maps only when a condition refers to them. The caller releases
// it once the filters ran.
func filterInput(cf *CompiledFilters, ev *event.Event, props map[string]any) *pipelineInput {
	in := pipelineInputs.Get().(*pipelineInput)
	// Event fields are bounded by validation (event.MaxTextLen); decoded
	// properties are no larger than their JSON.
	in.Input = Input{ID: ev.ID, Event: ev.Event, Category: ev.Category, Properties: props,
		Bounded: len(ev.Properties) <= maxValueSize}
	actor, resource, context := cf.Uses()
	if actor {
		m := in.actor
		m["type"], m["id"], m["name"], m["email"] = ev.Actor.Type, ev.Actor.ID, ev.Actor.Name, ev.Actor.Email
		in.Actor = m
	}
	if resource {
		m := in.resource
		m["type"], m["id"], m["name"] = ev.Resource.Type, ev.Resource.ID, ev.Resource.Name
		in.Resource = m
	}
	if context {
		m := in.context
		m["ip"], m["user_agent"], m["request_id"] = ev.Context.IP, ev.Context.UserAgent, ev.Context.RequestID
		in.Context = m
	}
	return in
}

// release returns in to the pool, holding no reference to its event.
func (in *pipelineInput) release() {
	in.Input = Input{}
	clear(in.actor)
	clear(in.resource)
	clear(in.context)
	pipelineInputs.Put(in)
}

// DecodeProperties decodes an event's properties with numbers kept exact
// (json.Number); none or null is an empty map.
func DecodeProperties(raw []byte) (map[string]any, error) {
	return decodeProperties(raw, 0)
}

// decodeProperties is DecodeProperties with more parse flags: with
// DontCopyString and DontCopyNumber, strings and numbers without escapes
// share raw's memory.
func decodeProperties(raw []byte, flags sjson.ParseFlags) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	if _, err := sjson.Parse(raw, &m, sjson.UseNumber|flags); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// FinalFailure reports whether an event passes the hard-failures-only rule:
// events that are not failures always pass; a failure passes when it is the
// last attempt (attempt >= max_attempts) or does not say.
func FinalFailure(name string, props map[string]any) bool {
	if !catalogue.IsFailure(name) {
		return true
	}
	attempt, ok1 := Number(props["attempt"])
	maxAttempts, ok2 := Number(props["max_attempts"])
	if !ok1 || !ok2 {
		return true
	}
	return attempt >= maxAttempts
}

// Number reads a count given as a JSON number or as a string holding one
// ("3"): producers send both. Anything else is not a number.
func Number(v any) (float64, bool) {
	switch n := v.(type) {
	case sjson.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case string:
		s := strings.TrimSpace(n)
		if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
			return 0, false
		}
		var f float64
		if err := sjson.Unmarshal([]byte(s), &f); err != nil {
			return 0, false
		}
		return f, true
	}
	return 0, false
}
