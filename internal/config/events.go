package config

import "github.com/audittrail/audittrail/schemas/event"

// EventPolicy reads which event names the deployment accepts:
// AUDITTRAIL_ALLOW_CUSTOM_EVENTS (custom names for every workspace) and
// AUDITTRAIL_CUSTOM_EVENT_WORKSPACES (custom names for the listed
// workspaces). The ingest gateway applies it to events and the settings API
// to the event names plans, filters and alerts may name.
func EventPolicy(e *Env) event.Policy {
	p := event.Policy{AllowCustomEvents: e.Bool("AUDITTRAIL_ALLOW_CUSTOM_EVENTS", false)}
	if ws := e.List("AUDITTRAIL_CUSTOM_EVENT_WORKSPACES", ""); len(ws) > 0 {
		p.CustomEventWorkspaces = make(map[string]bool, len(ws))
		for _, w := range ws {
			p.CustomEventWorkspaces[w] = true
		}
	}
	return p
}
