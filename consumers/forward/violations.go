package forward

// Tracking-plan violations, aggregated per workspace and recorded as
// "Violations Detected" audit events.

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/audittrail/audittrail/schemas/event"
)

// violations aggregates tracking-plan violations per workspace and records
// them as one "Violations Detected" event per workspace per interval.
type violations struct {
	em  Emitter
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	since time.Time
	byWS  map[string]*wsViolations
}

type wsViolations struct {
	count    int
	events   map[string]int
	examples []string
}

const maxExamples = 5

func newViolations(em Emitter, log *slog.Logger, now func() time.Time) *violations {
	return &violations{em: em, log: log, now: now, since: now(), byWS: map[string]*wsViolations{}}
}

func (v *violations) add(ws, name, eventID string, problems []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	a := v.byWS[ws]
	if a == nil {
		a = &wsViolations{events: map[string]int{}}
		v.byWS[ws] = a
	}
	a.count++
	a.events[name]++
	if len(a.examples) < maxExamples && len(problems) > 0 {
		a.examples = append(a.examples, name+" ("+eventID+"): "+problems[0])
	}
}

// flush records one event per workspace with violations since the last
// flush. Workspaces whose event could not be recorded are kept for the next
// flush.
func (v *violations) flush(ctx context.Context) {
	v.mu.Lock()
	batch, since := v.byWS, v.since
	v.byWS, v.since = map[string]*wsViolations{}, v.now()
	v.mu.Unlock()
	if v.em == nil {
		return
	}
	until := v.now().UTC()
	ids := make([]string, 0, len(batch))
	for ws := range batch {
		ids = append(ids, ws)
	}
	sort.Strings(ids)
	for _, ws := range ids {
		a := batch[ws]
		props, _ := json.Marshal(map[string]any{
			"violations": a.count, "events": a.events, "examples": a.examples,
			"since": since.UTC().Format(time.RFC3339), "until": until.Format(time.RFC3339),
		})
		ev := event.Event{
			WorkspaceID: ws, Event: "Violations Detected", Timestamp: until,
			Actor:      event.Actor{Type: event.ActorSystem, ID: "audittrail-forwarder", Name: "Audit forwarding"},
			Resource:   event.Resource{ID: ws, Name: "Audit forwarding tracking plan"},
			Properties: props,
		}
		if err := v.em.Emit(ctx, ev); err != nil {
			v.log.Warn("could not record violations; keeping them for the next interval", "workspace_id", ws, "violations", a.count, "err", err)
			v.mu.Lock()
			cur := v.byWS[ws]
			if cur == nil {
				v.byWS[ws] = a
			} else {
				cur.count += a.count
				for n, c := range a.events {
					cur.events[n] += c
				}
			}
			v.mu.Unlock()
		}
	}
}

func (v *violations) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.flush(ctx)
		}
	}
}
