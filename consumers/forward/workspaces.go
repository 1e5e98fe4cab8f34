package forward

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// Workspace is the compiled settings snapshot of one workspace. Snapshots
// are immutable: a change replaces the snapshot.
type Workspace struct {
	ID         string
	Forwarding trackingplan.Forwarding
	Plan       *trackingplan.CompiledPlan
	Filters    *trackingplan.CompiledFilters
	Alerts     trackingplan.Alerts
}

// Workspaces holds the snapshot of every workspace with settings, fed by
// the settings table. Safe for concurrent use.
type Workspaces struct {
	log *slog.Logger
	mu  sync.RWMutex
	ws  map[string]*Workspace
}

// NewWorkspaces returns an empty set.
func NewWorkspaces(log *slog.Logger) *Workspaces {
	return &Workspaces{log: log, ws: map[string]*Workspace{}}
}

// Get returns the workspace's snapshot, or nil when it has no settings.
func (w *Workspaces) Get(id string) *Workspace {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.ws[id]
}

// Apply is the settings table's change callback: it decodes and compiles
// one settings record (value nil: deleted) into a new snapshot. A record
// that does not compile leaves the kind at its default (off / allow all)
// and is logged; the API never stores such records.
func (w *Workspaces) Apply(key string, value []byte) {
	id, kind, ok := trackingplan.SplitKey(key)
	if !ok {
		w.log.Warn("settings record with a malformed key ignored", "key", key)
		return
	}
	var settings json.RawMessage
	if value != nil {
		var rec trackingplan.Record
		if err := json.Unmarshal(value, &rec); err != nil {
			w.log.Error("undecodable settings record ignored", "key", key, "err", err)
			return
		}
		settings = rec.Settings
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	next := &Workspace{ID: id}
	if cur := w.ws[id]; cur != nil {
		*next = *cur
	}
	if err := next.set(kind, settings); err != nil {
		w.log.Error("settings record could not be compiled; kind reset to its default", "key", key, "err", err)
	}
	w.ws[id] = next
}

func (ws *Workspace) set(kind string, raw json.RawMessage) error {
	switch kind {
	case trackingplan.KindForwarding:
		ws.Forwarding = trackingplan.Forwarding{}
		if raw == nil {
			return nil
		}
		var f trackingplan.Forwarding
		if err := json.Unmarshal(raw, &f); err != nil {
			return err
		}
		if err := f.Validate(); err != nil {
			return err
		}
		ws.Forwarding = f
	case trackingplan.KindPlan:
		ws.Plan = nil
		if raw == nil {
			return nil
		}
		var p trackingplan.Plan
		if err := trackingplan.Decode(raw, &p); err != nil {
			return err
		}
		cp, err := p.Compile()
		if err != nil {
			return err
		}
		ws.Plan = cp
	case trackingplan.KindFilters:
		ws.Filters = nil
		if raw == nil {
			return nil
		}
		var f trackingplan.Filters
		if err := trackingplan.Decode(raw, &f); err != nil {
			return err
		}
		cf, err := f.Compile()
		if err != nil {
			return err
		}
		ws.Filters = cf
	case trackingplan.KindAlerts:
		ws.Alerts = trackingplan.Alerts{}
		if raw == nil {
			return nil
		}
		var a trackingplan.Alerts
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		if err := a.Validate(); err != nil {
			return err
		}
		ws.Alerts = a
	default:
		return fmt.Errorf("unknown settings kind %q", kind)
	}
	return nil
}
