package event

import (
	"errors"
	"fmt"

	"github.com/audittrail/audittrail/schemas/catalogue"
)

// CheckName reports whether events named name are acceptable in workspace
// ws under p, the same rule Validate applies to an event's name: a
// catalogue name, or, where custom events are allowed for the workspace, a
// custom name in the catalogue's style. Settings that name events (tracking
// plans, filters, alert lists) use it so that they name only events that
// can exist.
func (p Policy) CheckName(ws, name string) error {
	if _, ok := catalogue.Lookup(name); ok {
		return nil
	}
	if !p.AllowCustomEvents && !p.CustomEventWorkspaces[ws] {
		return fmt.Errorf("unknown event name %q: not in the catalogue (GET /v1/catalogue lists the names) and custom events are not enabled for this workspace", truncate(name, maxEventLength))
	}
	if !catalogue.ValidCustomName(name) {
		return errors.New("custom event names use the catalogue's style: 2-6 capitalised words such as \"Report Schedule Modified\"")
	}
	return nil
}
