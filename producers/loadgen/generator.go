// Package loadgen generates realistic audit traffic.
//
// The traffic has many workspaces with a skewed (Zipf) share of the events,
// the catalogue's event mix weighted towards everyday changes, actors that
// are users and access tokens, and changes with before and after values. The
// load generator command and the benchmarks use it.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
)

// Config shapes the generated traffic.
type Config struct {
	// Workspaces is how many workspaces send events; workspace i is named
	// WorkspacePrefix+i, and DemoWorkspace (when set) is the busiest.
	Workspaces      int
	WorkspacePrefix string
	DemoWorkspace   string
	// ZipfS (> 1) is the skew of events across workspaces.
	ZipfS float64
	// Spread spreads timestamps back from now over this window (0: now).
	Spread time.Duration
	Seed   uint64
}

// Generator makes events. It is not safe for concurrent use; give each
// goroutine its own (with different seeds).
type Generator struct {
	cfg     Config
	rnd     *rand.Rand
	zipf    *rand.Zipf
	names   []string
	weights []float64
	total   float64
	seq     uint64
	now     func() time.Time
}

// New returns a generator.
func New(cfg Config, now func() time.Time) (*Generator, error) {
	if cfg.Workspaces < 1 {
		return nil, fmt.Errorf("workspaces must be at least 1, got %d", cfg.Workspaces)
	}
	if cfg.ZipfS <= 1 {
		return nil, fmt.Errorf("zipf skew must be greater than 1, got %g", cfg.ZipfS)
	}
	if cfg.WorkspacePrefix == "" {
		cfg.WorkspacePrefix = "ws_"
	}
	if now == nil {
		now = time.Now
	}
	rnd := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &Generator{cfg: cfg, rnd: rnd, now: now,
		zipf: rand.NewZipf(rnd, cfg.ZipfS, 1, uint64(cfg.Workspaces-1))}
	for _, e := range catalogue.All() {
		if e.Category == catalogue.CategoryAuditTrail {
			continue // the product's own events are not platform traffic
		}
		w := 1.0
		switch {
		case strings.HasSuffix(e.Name, " Modified"), strings.HasSuffix(e.Name, " Updated"):
			w = 8
		case catalogue.IsFailure(e.Name):
			w = 4
		case strings.HasSuffix(e.Name, " Created"), strings.HasSuffix(e.Name, " Enabled"), strings.HasSuffix(e.Name, " Disabled"):
			w = 3
		}
		g.names = append(g.names, e.Name)
		g.total += w
		g.weights = append(g.weights, g.total)
	}
	return g, nil
}

// Workspace returns the name of workspace i (0 is the busiest).
func (g *Generator) Workspace(i int) string {
	if i == 0 && g.cfg.DemoWorkspace != "" {
		return g.cfg.DemoWorkspace
	}
	return fmt.Sprintf("%s%04d", g.cfg.WorkspacePrefix, i)
}

var (
	people = []struct{ name, email string }{
		{"Alice Martin", "alice@example.com"}, {"Bob Chen", "bob@example.com"},
		{"Chioma Okafor", "chioma@example.com"}, {"Dmitri Ivanov", "dmitri@example.com"},
		{"Elena García", "elena@example.com"}, {"Farid Haddad", "farid@example.com"},
		{"Grace Kim", "grace@example.com"}, {"Hiro Tanaka", "hiro@example.com"},
	}
	tokens    = []string{"CI deploy token", "Terraform", "Reverse ETL sync", "Billing service"}
	resources = []string{"Web", "iOS", "Android", "Snowflake prod", "BigQuery", "Checkout funnel", "VIP customers", "Churn risk", "Marketing"}
	agents    = []string{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36", "terraform-provider/2.3.1", "go-http-client/2.0"}
)

// Next returns the next event, ready to send (without received_at).
func (g *Generator) Next() event.Event {
	g.seq++
	ws := g.Workspace(int(g.zipf.Uint64()))
	name := g.pick()
	entry, _ := catalogue.Lookup(name)
	ts := g.now().UTC()
	if g.cfg.Spread > 0 {
		ts = ts.Add(-time.Duration(g.rnd.Int64N(int64(g.cfg.Spread))))
	}
	e := event.Event{
		ID:          fmt.Sprintf("lg-%x-%d", g.cfg.Seed, g.seq),
		WorkspaceID: ws,
		Event:       name,
		Category:    entry.Category,
		Timestamp:   ts,
		Resource: event.Resource{Type: entry.ResourceType, ID: fmt.Sprintf("%s_%03d", entry.ResourceType, g.rnd.IntN(200)),
			Name: resources[g.rnd.IntN(len(resources))]},
		Context: event.Context{
			IP:        fmt.Sprintf("198.51.100.%d", 1+g.rnd.IntN(254)),
			UserAgent: agents[g.rnd.IntN(len(agents))],
			RequestID: fmt.Sprintf("req_%016x", g.rnd.Uint64()),
		},
	}
	switch {
	case catalogue.IsFailure(name):
		e.Actor = event.Actor{Type: event.ActorSystem, ID: "scheduler", Name: "Scheduler"}
		attempt := 1 + g.rnd.IntN(5)
		e.Properties = json.RawMessage(fmt.Sprintf(`{"attempt": %d, "max_attempts": 5, "error": "connection reset by peer"}`, attempt))
	case g.rnd.IntN(4) == 0:
		t := g.rnd.IntN(len(tokens))
		e.Actor = event.Actor{Type: event.ActorAccessToken, ID: fmt.Sprintf("tok_%02d", t), Name: tokens[t]}
	default:
		p := people[g.rnd.IntN(len(people))]
		e.Actor = event.Actor{Type: event.ActorUser, ID: "usr_" + strings.ToLower(strings.Fields(p.name)[0]), Name: p.name, Email: p.email}
	}
	switch {
	case strings.HasSuffix(name, " Enabled"):
		e.Changes = map[string]event.Change{"enabled": {Old: json.RawMessage("false"), New: json.RawMessage("true")}}
	case strings.HasSuffix(name, " Disabled"):
		e.Changes = map[string]event.Change{"enabled": {Old: json.RawMessage("true"), New: json.RawMessage("false")}}
	case strings.HasSuffix(name, " Modified"), strings.HasSuffix(name, " Updated"):
		e.Changes = map[string]event.Change{
			"name":     {Old: json.RawMessage(fmt.Sprintf("%q", e.Resource.Name)), New: json.RawMessage(fmt.Sprintf("%q", e.Resource.Name+" (v2)"))},
			"settings": {Old: json.RawMessage(`{"batch_size": 100}`), New: json.RawMessage(fmt.Sprintf(`{"batch_size": %d}`, 100+g.rnd.IntN(900)))},
		}
	case strings.HasSuffix(name, " Created"):
		e.Changes = map[string]event.Change{"name": {New: json.RawMessage(fmt.Sprintf("%q", e.Resource.Name))}}
	case strings.HasSuffix(name, " Deleted"):
		e.Changes = map[string]event.Change{"name": {Old: json.RawMessage(fmt.Sprintf("%q", e.Resource.Name))}}
	}
	return e
}

func (g *Generator) pick() string {
	x := g.rnd.Float64() * g.total
	lo, hi := 0, len(g.weights)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if g.weights[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return g.names[lo]
}
