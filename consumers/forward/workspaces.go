package forward

// Workspace settings: snapshots built from the settings topic, with their
// tracking plans and filters compiled off the delivery path.

import (
	"context"
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

	// loaded and waiting are bit sets of the compiled kinds (plan,
	// filters): loaded once a record of the kind was compiled, waiting
	// while a record of a kind not yet loaded is queued for compilation.
	loaded, waiting uint8
}

// Ready reports whether every compiled kind of the workspace that has a
// record is compiled. Until then its events are not delivered: before the
// first compilation of its tracking plan or filters, there is no previous
// version to apply in their place.
func (ws *Workspace) Ready() bool { return ws.waiting == 0 }

// Compiled kinds: their records are compiled off the delivery path.
const (
	bitPlan uint8 = 1 << iota
	bitFilters
)

func compiledKind(kind string) uint8 {
	switch kind {
	case trackingplan.KindPlan:
		return bitPlan
	case trackingplan.KindFilters:
		return bitFilters
	}
	return 0
}

// maxCompiles bounds the settings records compiled at once (CPU and the
// memory of compilation); other workspaces' compilations wait for a slot,
// never the delivery path.
const maxCompiles = 8

// Workspaces holds the snapshot of every workspace with settings, fed by
// the settings table. Safe for concurrent use.
//
// Tracking plans and filters are compiled off the delivery path and off the
// settings table's goroutine: Apply queues the newest record of each kind
// per workspace (a newer record replaces a queued one, so memory is bounded
// by the settings themselves) and one goroutine per workspace with queued
// records compiles them, at most maxCompiles at once. Until the new version
// is compiled the previous one stays in use, so a slow or huge setting
// delays only its own workspace's change. Close waits for the goroutines.
type Workspaces struct {
	log *slog.Logger
	// compile compiles a plan or filters record (kind, raw; raw nil: none).
	compile  func(id, kind string, raw json.RawMessage) (any, error)
	onChange func(id string)

	mu sync.RWMutex
	ws map[string]*Workspace

	cmu     sync.Mutex
	queued  map[string]map[string]json.RawMessage // by workspace, kind
	active  int                                   // workspaces with a compiling goroutine
	idle    chan struct{}                         // closed while active == 0
	closed  bool
	slots   chan struct{}
	running sync.WaitGroup
}

// NewWorkspaces returns an empty set.
func NewWorkspaces(log *slog.Logger) *Workspaces {
	idle := make(chan struct{})
	close(idle)
	return &Workspaces{log: log, ws: map[string]*Workspace{}, compile: compileSettings,
		queued: map[string]map[string]json.RawMessage{}, idle: idle, slots: make(chan struct{}, maxCompiles)}
}

// Get returns the workspace's snapshot, or nil when it has no settings.
func (w *Workspaces) Get(id string) *Workspace {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.ws[id]
}

// Apply is the settings table's change callback: it decodes one settings
// record (value nil: deleted) into a new snapshot. Forwarding and alert
// settings apply at once; tracking plans and filters are queued for
// compilation and apply when compiled. A record that does not compile
// leaves the kind at its default (off / allow all) and is logged; the API
// never stores such records.
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
		if settings == nil {
			settings = json.RawMessage("null")
		}
	}
	if bit := compiledKind(kind); bit != 0 {
		w.queue(id, kind, bit, settings)
		return
	}
	// Decoded outside the lock (readers are never held by it), then
	// swapped in over the current snapshot's other kinds.
	dec := &Workspace{}
	err := dec.set(kind, settings)
	w.mu.Lock()
	next := &Workspace{ID: id}
	if cur := w.ws[id]; cur != nil {
		*next = *cur
	}
	switch kind {
	case trackingplan.KindForwarding:
		next.Forwarding = dec.Forwarding
	case trackingplan.KindAlerts:
		next.Alerts = dec.Alerts
	}
	w.ws[id] = next
	w.mu.Unlock()
	if err != nil {
		w.log.Error("settings record could not be compiled; kind reset to its default", "key", key, "err", err)
	}
	w.changed(id)
}

func (w *Workspaces) changed(id string) {
	if w.onChange != nil {
		w.onChange(id)
	}
}

// queue records the newest record of a compiled kind and starts the
// workspace's compiling goroutine unless it runs.
func (w *Workspaces) queue(id, kind string, bit uint8, raw json.RawMessage) {
	w.mu.Lock()
	cur := w.ws[id]
	if cur == nil || cur.loaded&bit == 0 {
		next := &Workspace{ID: id}
		if cur != nil {
			*next = *cur
		}
		next.waiting |= bit
		w.ws[id] = next
	}
	w.mu.Unlock()

	w.cmu.Lock()
	defer w.cmu.Unlock()
	if w.closed {
		return
	}
	q := w.queued[id]
	start := q == nil
	if start {
		q = map[string]json.RawMessage{}
		w.queued[id] = q
	}
	q[kind] = raw
	if !start {
		return // its goroutine takes the record
	}
	if w.active == 0 {
		w.idle = make(chan struct{})
	}
	w.active++
	w.running.Go(func() { w.compileLoop(id) })
}

// compileLoop compiles the workspace's queued records until none is left.
func (w *Workspaces) compileLoop(id string) {
	for {
		w.cmu.Lock()
		q := w.queued[id]
		if len(q) == 0 {
			delete(w.queued, id)
			w.active--
			if w.active == 0 {
				close(w.idle)
			}
			w.cmu.Unlock()
			return
		}
		w.queued[id] = map[string]json.RawMessage{}
		w.cmu.Unlock()
		for kind, raw := range q {
			w.slots <- struct{}{}
			c, err := w.compile(id, kind, raw)
			<-w.slots
			if err != nil {
				w.log.Error("settings record could not be compiled; kind reset to its default",
					"key", trackingplan.Key(id, kind), "err", err)
				c = nil
			}
			w.store(id, kind, c)
		}
		w.changed(id)
	}
}

// store replaces the workspace's snapshot with one holding c.
func (w *Workspaces) store(id, kind string, c any) {
	bit := compiledKind(kind)
	w.mu.Lock()
	defer w.mu.Unlock()
	next := &Workspace{ID: id}
	if cur := w.ws[id]; cur != nil {
		*next = *cur
	}
	switch kind {
	case trackingplan.KindPlan:
		next.Plan, _ = c.(*trackingplan.CompiledPlan)
	case trackingplan.KindFilters:
		next.Filters, _ = c.(*trackingplan.CompiledFilters)
	}
	next.loaded |= bit
	next.waiting &^= bit
	w.ws[id] = next
}

// WaitIdle waits until no settings record is queued or compiling, or ctx
// ends.
func (w *Workspaces) WaitIdle(ctx context.Context) error {
	w.cmu.Lock()
	idle := w.idle
	w.cmu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("settings not compiled: %w", ctx.Err())
	}
}

// Close drops the queued records and waits for the compilations under
// way. Apply does nothing afterwards.
func (w *Workspaces) Close() {
	w.cmu.Lock()
	w.closed = true
	for id := range w.queued {
		w.queued[id] = map[string]json.RawMessage{}
	}
	w.cmu.Unlock()
	w.running.Wait()
}

// compileSettings compiles a tracking plan or filters record; raw nil (or
// JSON null) means none.
func compileSettings(_, kind string, raw json.RawMessage) (any, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	switch kind {
	case trackingplan.KindPlan:
		var p trackingplan.Plan
		if err := trackingplan.Decode(raw, &p); err != nil {
			return nil, err
		}
		return p.Compile()
	case trackingplan.KindFilters:
		var f trackingplan.Filters
		if err := trackingplan.Decode(raw, &f); err != nil {
			return nil, err
		}
		return f.Compile()
	}
	return nil, fmt.Errorf("unknown compiled settings kind %q", kind)
}

// set decodes a forwarding or alerts record into ws (raw nil: default).
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
