package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// The audit event a settings change records: its name, the changed
// fields (secrets masked) and their size bound.

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func change(changes map[string]event.Change, field string, old, new any) {
	o, n := raw(old), raw(new)
	if !bytes.Equal(o, n) {
		changes[field] = event.Change{Old: o, New: n}
	}
}

// describe returns the audit event name and the changed fields between old
// and next (secrets masked).
func describe(kind string, old, next any) (string, map[string]event.Change) {
	ch := map[string]event.Change{}
	switch kind {
	case trackingplan.KindForwarding:
		o, n := old.(*trackingplan.Forwarding), next.(*trackingplan.Forwarding)
		change(ch, "enabled", o.Enabled, n.Enabled)
		change(ch, "target.name", o.Target.Name, n.Target.Name)
		change(ch, "target.url", o.Target.URL, n.Target.URL)
		if o.Target.WriteKey != n.Target.WriteKey {
			ch["target.write_key"] = event.Change{Old: raw(trackingplan.MaskKey(o.Target.WriteKey)), New: raw(trackingplan.MaskKey(n.Target.WriteKey))}
		}
		change(ch, "hard_failures_only", o.HardFailuresOnly, n.HardFailuresOnly)
		savedChanges(ch, o.SavedTargets, n.SavedTargets)
		switch {
		case !o.Enabled && n.Enabled:
			return "Audit Forwarding Enabled", ch
		case o.Enabled && !n.Enabled:
			return "Audit Forwarding Disabled", ch
		}
		return "Audit Forwarding Modified", ch
	case trackingplan.KindPlan:
		o, n := display(old).(trackingplan.Plan), next.(*trackingplan.Plan)
		change(ch, "unplanned_events", o.UnplannedEvents, n.UnplannedEvents)
		change(ch, "unplanned_properties", o.UnplannedProperties, n.UnplannedProperties)
		change(ch, "on_violation", o.OnViolation, n.OnViolation)
		for _, name := range unionKeys(o.Events, n.Events) {
			var ov, nv any
			if e, ok := o.Events[name]; ok {
				ov = e.Properties
			}
			if e, ok := n.Events[name]; ok {
				nv = e.Properties
			}
			change(ch, "events."+name, ov, nv)
		}
		return "Tracking Plan Modified", ch
	case trackingplan.KindFilters:
		o, n := old.(*trackingplan.Filters), next.(*trackingplan.Filters)
		om, nm := map[string]trackingplan.Filter{}, map[string]trackingplan.Filter{}
		for _, f := range o.Filters {
			om[f.Name] = f
		}
		for _, f := range n.Filters {
			nm[f.Name] = f
		}
		for _, name := range unionKeys(om, nm) {
			var ov, nv any
			if f, ok := om[name]; ok {
				ov = f
			}
			if f, ok := nm[name]; ok {
				nv = f
			}
			change(ch, "filters."+name, ov, nv)
		}
		if len(ch) == 0 {
			change(ch, "order", names(o.Filters), names(n.Filters))
		}
		return "Destination Filters Modified", ch
	case trackingplan.KindAlerts:
		o, n := old.(*trackingplan.Alerts), next.(*trackingplan.Alerts)
		change(ch, "enabled", o.Enabled, n.Enabled)
		if o.WebhookURL != n.WebhookURL {
			ch["webhook_url"] = event.Change{Old: raw(MaskURL(o.WebhookURL)), New: raw(MaskURL(n.WebhookURL))}
		}
		change(ch, "events", nonNilStrings(o.Events), nonNilStrings(n.Events))
		return "Alert Webhook Modified", ch
	}
	return "", nil
}

func names(fs []trackingplan.Filter) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func unionKeys[V any](a, b map[string]V) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// maxChangesBytes keeps the audit event well under the 32 KiB event limit.
const maxChangesBytes = 24 << 10

// shrink replaces large before/after values (whole schemas or filters) with
// a note, largest first, until the changes fit.
func shrink(ev *event.Event) {
	size := func() int { return len(raw(ev.Changes)) }
	if size() <= maxChangesBytes {
		return
	}
	keys := make([]string, 0, len(ev.Changes))
	for k := range ev.Changes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return len(raw(ev.Changes[b])) - len(raw(ev.Changes[a]))
	})
	note := func(v json.RawMessage) json.RawMessage {
		if len(v) == 0 || string(v) == "null" {
			return v
		}
		return raw(fmt.Sprintf("(%d bytes, too large to record)", len(v)))
	}
	for _, k := range keys {
		c := ev.Changes[k]
		ev.Changes[k] = event.Change{Old: note(c.Old), New: note(c.New)}
		if size() <= maxChangesBytes {
			return
		}
	}
	for _, k := range keys[:len(keys)/2] {
		delete(ev.Changes, k)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// savedChanges records the saved targets added, removed or changed, by
// name: "saved_targets.<name>" holds the URL (null when there is none), and
// "saved_targets.<name>.write_key" the masked keys when the key changed.
func savedChanges(ch map[string]event.Change, old, next []trackingplan.Target) {
	om, nm := map[string]trackingplan.Target{}, map[string]trackingplan.Target{}
	for _, t := range old {
		om[t.Name] = t
	}
	for _, t := range next {
		nm[t.Name] = t
	}
	for _, name := range unionKeys(om, nm) {
		o, inOld := om[name]
		n, inNext := nm[name]
		var ou, nu any
		if inOld {
			ou = o.URL
		}
		if inNext {
			nu = n.URL
		}
		change(ch, "saved_targets."+name, ou, nu)
		if o.WriteKey != n.WriteKey {
			ch["saved_targets."+name+".write_key"] = event.Change{Old: raw(trackingplan.MaskKey(o.WriteKey)), New: raw(trackingplan.MaskKey(n.WriteKey))}
		}
	}
}
