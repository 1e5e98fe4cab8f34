package forward

// The per-event pipeline of a workspace: the hard-failure rule, tracking
// plan and destination filters turn an audit event into a track call
// (Process) or say why it is dropped; and the text of an alert (AlertText).

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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

// Drop reasons (metric label values): those of the pipeline, and two of
// the forwarder's own.
const (
	dropNotFinal  = trackingplan.DropNotFinal
	dropUnplanned = trackingplan.DropUnplanned
	dropViolation = trackingplan.DropViolation
	dropFilter    = trackingplan.DropFilter
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

// Process runs ev through the workspace's pipeline (hard-failure rule,
// tracking plan and destination filters: trackingplan.Pipeline) and
// encodes the track call. The error is non-nil only for an event whose
// encoding exceeds MaxEventBytes.
func Process(ws *Workspace, ev *event.Event) (Outcome, error) {
	return processStored(ws, ev, nil)
}

// processStored is Process for an event decoded by event.DecodeStored:
// when it returned the changes as their JSON (ev.Changes nil), they are
// encoded from changes.
func processStored(ws *Workspace, ev *event.Event, changes json.RawMessage) (Outcome, error) {
	d := ws.Pipeline().Run(ev)
	out := Outcome{Dropped: d.Dropped, Filter: d.Filter, Violations: d.Violations, FilterErrors: d.FilterErrors}
	if d.Dropped != "" {
		return out, nil
	}
	call, err := encodeTrackCall(ev, d.Properties, changes)
	if err != nil {
		return out, err
	}
	if len(call) > MaxEventBytes {
		return out, fmt.Errorf("%w: %d bytes", errTooLarge, len(call))
	}
	out.Call = call
	return out, nil
}

// Pipeline is the workspace's per-event decision.
func (ws *Workspace) Pipeline() trackingplan.Pipeline {
	return trackingplan.Pipeline{HardFailuresOnly: ws.Forwarding.HardFailuresOnly, Plan: ws.Plan, Filters: ws.Filters}
}

// skipsSoftFailure reports whether the workspace's hard-failures-only
// setting leaves ev out: a failure that will be retried.
func skipsSoftFailure(ws *Workspace, ev *event.Event) bool {
	return ws.Pipeline().SkipsSoftFailure(ev)
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
	props, err := trackingplan.DecodeProperties(ev.Properties)
	if err != nil {
		return
	}
	attempt, ok1 := trackingplan.Number(props["attempt"])
	maxAttempts, ok2 := trackingplan.Number(props["max_attempts"])
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
