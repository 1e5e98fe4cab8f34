package config

import "github.com/audittrail/audittrail/schemas/event"

// Which event names the deployment accepts.
var (
	AllowCustomEvents = declare(Bool{Var: Var{Name: "AUDITTRAIL_ALLOW_CUSTOM_EVENTS", Readers: "ingest, api",
		Doc: "accept event names outside the catalogue from every workspace (at ingest, and in tracking plans, filters and alerts)"}})
	CustomEventWorkspaces = declare(List{Var: Var{Name: "AUDITTRAIL_CUSTOM_EVENT_WORKSPACES", Readers: "ingest, api",
		Doc: "workspaces allowed to send (and name in their settings) event names outside the catalogue", Accepts: "workspace ids, comma-separated"}})
)

// EventPolicy reads which event names the deployment accepts:
// AllowCustomEvents (custom names for every workspace) and
// CustomEventWorkspaces (custom names for the listed workspaces). The
// ingest gateway applies it to events and the settings API to the event
// names plans, filters and alerts may name.
func EventPolicy(e *Env) event.Policy {
	p := event.Policy{AllowCustomEvents: AllowCustomEvents.Get(e)}
	if ws := CustomEventWorkspaces.Get(e); len(ws) > 0 {
		p.CustomEventWorkspaces = make(map[string]bool, len(ws))
		for _, w := range ws {
			p.CustomEventWorkspaces[w] = true
		}
	}
	return p
}
