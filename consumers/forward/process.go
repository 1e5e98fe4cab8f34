package forward

// The per-event pipeline of a workspace: the hard-failure rule, tracking
// plan and destination filters turn an audit event into a track call
// (Process) or say why it is dropped; and the text of an alert (AlertText).

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// Limits of the HTTP tracking API, 32 KB per call and 500 KB per request,
// counted in decimal units as the API's own client libraries do: a source
// may refuse anything larger.
const (
	MaxEventBytes   = 32_000
	MaxRequestBytes = 500_000
)

// Drop reasons (metric label values).
const (
	dropNotFinal  = "not_final_failure"
	dropUnplanned = "unplanned_event"
	dropViolation = "violation"
	dropFilter    = "filter"
	dropDisabled  = "disabled"
	dropDuplicate = "duplicate_id"
)

// TrackCall is one event of a batch request of the HTTP tracking API.
type TrackCall struct {
	Type       string         `json:"type"`
	Event      string         `json:"event"`
	UserID     string         `json:"userId"`
	MessageID  string         `json:"messageId"`
	Timestamp  string         `json:"timestamp"`
	Properties map[string]any `json:"properties"`
	Context    map[string]any `json:"context"`
}

// Outcome of running one event through a workspace's pipeline.
type Outcome struct {
	// Call is the encoded track call; nil when the event is dropped.
	Call []byte
	// Dropped says why the event is not sent ("" when it is).
	Dropped string
	// Filter names the filter that dropped it.
	Filter string
	// Violations of the tracking plan (also when the event is sent).
	Violations []string
	// FilterErrors counts filter conditions that failed to evaluate.
	FilterErrors int
}

// Process runs ev through the workspace's hard-failure rule, tracking plan
// and destination filters, and encodes the track call. The error is
// non-nil only for an event whose encoding exceeds MaxEventBytes.
func Process(ws *Workspace, ev *event.Event) (Outcome, error) {
	var out Outcome
	if ws.Plan.Blocks(ev.Event) && (!ws.Forwarding.HardFailuresOnly || !catalogue.IsFailure(ev.Event)) {
		// Unplanned and blocked: its properties are never read.
		out.Dropped = dropUnplanned
		return out, nil
	}
	props, err := decodeProps(ev.Properties)
	if err != nil {
		props = map[string]any{}
	}
	if ws.Forwarding.HardFailuresOnly && !FinalFailure(ev.Event, props) {
		out.Dropped = dropNotFinal
		return out, nil
	}
	v := ws.Plan.Check(ev.Event, props)
	out.Violations = v.Violations
	if v.Drop {
		out.Dropped = dropViolation
		if v.Unplanned {
			out.Dropped = dropUnplanned
		}
		return out, nil
	}
	in := filterInput(ws.Filters, ev, props)
	f := ws.Filters.Apply(&in.Input)
	in.release()
	out.FilterErrors = f.EvalErrors
	if f.Drop != "" {
		out.Dropped, out.Filter = dropFilter, f.Drop
		return out, nil
	}
	call, err := encodeTrackCall(ev, props)
	if err != nil {
		return out, err
	}
	if len(call) > MaxEventBytes {
		return out, fmt.Errorf("%w: %d bytes", errTooLarge, len(call))
	}
	out.Call = call
	return out, nil
}

// input is what a workspace's filters see of one event, with maps of the
// event's fields that are reused: Apply reads them and keeps nothing.
type input struct {
	trackingplan.Input
	actor, resource, context map[string]string
}

var inputs = sync.Pool{New: func() any {
	return &input{actor: make(map[string]string, 4), resource: make(map[string]string, 3), context: make(map[string]string, 3)}
}}

// filterInput is what ws's filters see of ev: the actor, resource and
// context maps only when a condition refers to them. The caller releases
// it once the filters ran.
func filterInput(cf *trackingplan.CompiledFilters, ev *event.Event, props map[string]any) *input {
	in := inputs.Get().(*input)
	in.Input = trackingplan.Input{ID: ev.ID, Event: ev.Event, Category: ev.Category, Properties: props}
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
func (in *input) release() {
	in.Input = trackingplan.Input{}
	clear(in.actor)
	clear(in.resource)
	clear(in.context)
	inputs.Put(in)
}

func decodeProps(raw json.RawMessage) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	if _, err := json.Parse(raw, &m, json.UseNumber); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// skipsSoftFailure reports whether the workspace's hard-failures-only
// setting leaves ev out: a failure that will be retried.
func skipsSoftFailure(ws *Workspace, ev *event.Event) bool {
	if !ws.Forwarding.HardFailuresOnly {
		return false
	}
	props, _ := decodeProps(ev.Properties)
	return !FinalFailure(ev.Event, props)
}

// FinalFailure reports whether an event passes the hard-failures-only rule:
// events that are not failures always pass; a failure passes when it is the
// last attempt (attempt >= max_attempts) or does not say.
func FinalFailure(name string, props map[string]any) bool {
	if !catalogue.IsFailure(name) {
		return true
	}
	attempt, ok1 := number(props["attempt"])
	maxAttempts, ok2 := number(props["max_attempts"])
	if !ok1 || !ok2 {
		return true
	}
	return attempt >= maxAttempts
}

// number reads a count given as a JSON number or as a string holding one
// ("3"): producers send both. Anything else is not a number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
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
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

// AlertText is the chat message for an alerting event: who, what, which
// resource, when, for a failure event the attempt ("Attempt: 3 of 5",
// counts given as numbers or numeric strings) and its error text, and the
// first changes.
func AlertText(ev *event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* in workspace %s\n", ev.Event, ev.WorkspaceID)
	who := ev.Actor.Name
	if who == "" {
		who = ev.Actor.ID
	}
	if ev.Actor.Email != "" {
		who += " <" + ev.Actor.Email + ">"
	}
	fmt.Fprintf(&b, "By: %s (%s %s)\n", who, strings.ReplaceAll(ev.Actor.Type, "_", " "), ev.Actor.ID)
	if ev.Resource.ID != "" || ev.Resource.Name != "" {
		res := strings.ReplaceAll(ev.Resource.Type, "_", " ")
		if ev.Resource.Name != "" {
			res += fmt.Sprintf(" %q", ev.Resource.Name)
		}
		if ev.Resource.ID != "" {
			res += " (" + ev.Resource.ID + ")"
		}
		fmt.Fprintf(&b, "Resource: %s\n", strings.TrimSpace(res))
	}
	fmt.Fprintf(&b, "When: %s", ev.Timestamp.UTC().Format("2006-01-02 15:04:05 UTC"))
	if catalogue.IsFailure(ev.Event) {
		writeFailure(&b, ev)
	}
	if len(ev.Changes) > 0 {
		keys := make([]string, 0, len(ev.Changes))
		for k := range ev.Changes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("\nChanges:")
		for i, k := range keys {
			if i == 5 {
				fmt.Fprintf(&b, "\n- and %d more", len(keys)-5)
				break
			}
			c := ev.Changes[k]
			fmt.Fprintf(&b, "\n- %s: %s → %s", k, short(c.Old), short(c.New))
		}
	}
	return b.String()
}

// writeFailure adds a failure event's attempt and error lines.
func writeFailure(b *strings.Builder, ev *event.Event) {
	props, err := decodeProps(ev.Properties)
	if err != nil {
		return
	}
	attempt, ok1 := number(props["attempt"])
	maxAttempts, ok2 := number(props["max_attempts"])
	switch {
	case ok1 && ok2:
		fmt.Fprintf(b, "\nAttempt: %s of %s", count(attempt), count(maxAttempts))
	case ok1:
		fmt.Fprintf(b, "\nAttempt: %s", count(attempt))
	}
	if msg, ok := props["error"].(string); ok && strings.TrimSpace(msg) != "" {
		msg = strings.TrimSpace(msg)
		if r := []rune(msg); len(r) > 300 {
			msg = string(r[:297]) + "..."
		}
		fmt.Fprintf(b, "\nError: %s", msg)
	}
}

func count(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func short(v json.RawMessage) string {
	if len(v) == 0 {
		return "(none)"
	}
	s := string(v)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
