// Package catalogue_test tests the event catalogue from outside: every
// documented name spelled exactly with its product area, the product's own
// events, categories, exact lookup and the custom-name style, with examples,
// a fuzz target and a lookup benchmark.
package catalogue_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/catalogue"
)

// documented lists every event name of the feature's public documentation,
// copied verbatim (case and spacing matter), with the category it belongs to.
var documented = []struct{ name, category string }{
	// Access Management
	{"User Invite Sent", "Users"},
	{"User Invite Deleted", "Users"},
	{"User Invite Accepted", "Users"},
	{"User Added via SSO", "Users"},
	{"User Removed", "Users"},
	{"User Group Created", "Users"},
	{"User Group Updated", "Users"},
	// Source
	{"Source Created", "Sources"},
	{"Source Enabled", "Sources"},
	{"Source Disabled", "Sources"},
	{"Source Modified", "Sources"},
	{"Source Deleted", "Sources"},
	// Integrations
	{"Integrations Created", "Destinations"},
	{"Integrations Enabled", "Destinations"},
	{"Integrations Disabled", "Destinations"},
	{"Integrations Modified", "Destinations"},
	{"Integrations Deleted", "Destinations"},
	// Functions
	{"Source Function Created", "Functions"},
	{"Source Function Deleted", "Functions"},
	{"Source Function Modified", "Functions"},
	{"Destination Function Created", "Functions"},
	{"Destination Function Deleted", "Functions"},
	{"Destination Function Modified", "Functions"},
	// Destination Filters
	{"Destination Filters Created", "Destination Filters"},
	{"Destination Filters Modified", "Destination Filters"},
	{"Destination Filters Deleted", "Destination Filters"},
	// Warehouses
	{"Warehouses Created", "Warehouses"},
	{"Warehouses Enabled", "Warehouses"},
	{"Warehouses Disabled", "Warehouses"},
	{"Warehouses Modified", "Warehouses"},
	{"Warehouses Deleted", "Warehouses"},
	{"Warehouse Run Failed", "Warehouses"},
	// Protocols
	{"Tracking Plan Created", "Tracking Plans"},
	{"Tracking Plan Modified", "Tracking Plans"},
	{"Tracking Plan Deleted", "Tracking Plans"},
	{"Source Connected to Tracking Plan", "Tracking Plans"},
	{"Source Disconnected From Tracking Plan", "Tracking Plans"},
	{"Tracking Plan Inferred", "Tracking Plans"},
	{"Tracking Plan New Event Blocked", "Tracking Plans"},
	{"Tracking Plan New Event Allowed", "Tracking Plans"},
	{"Tracking Plan New Group Trait Omitted", "Tracking Plans"},
	{"Tracking Plan New Identify Trait Omitted", "Tracking Plans"},
	{"Tracking Plan New Track Property Omitted", "Tracking Plans"},
	{"Tracking Plan Operations Updated", "Tracking Plans"},
	{"Tracking Plan Updated", "Tracking Plans"},
	{"Violations Detected", "Tracking Plans"},
	// Engage
	{"Source Connected To Space", "Spaces"},
	{"Source Disconnected From Space", "Spaces"},
	{"Space Created", "Spaces"},
	{"Space Modified", "Spaces"},
	{"Space Deleted", "Spaces"},
	{"Computed Trait Created", "Computed Traits"},
	{"Computed Trait Modified", "Computed Traits"},
	{"Computed Trait Deleted", "Computed Traits"},
	{"Computed Trait CSV Downloaded", "Computed Traits"},
	{"Computed Trait Run Failed", "Computed Traits"},
	{"Computed Trait Destination Sync Failed", "Computed Traits"},
	{"Audience Created", "Audiences"},
	{"Audience Modified", "Audiences"},
	{"Audience Deleted", "Audiences"},
	{"Audience CSV Downloaded", "Audiences"},
	{"Audience Run Failed", "Audiences"},
	{"Audience Destination Sync Failed", "Audiences"},
	{"Engage Warehouse Source Created", "Engage Warehouse Sources"},
	{"Engage Warehouse Source Modified", "Engage Warehouse Sources"},
	{"Engage Warehouse Source Deleted", "Engage Warehouse Sources"},
}

// productEvents are the audit trail's own events.
var productEvents = []string{
	"Audit Forwarding Enabled",
	"Audit Forwarding Disabled",
	"Audit Forwarding Modified",
	"Audit Trail Exported",
	"Alert Webhook Modified",
	"Producer Credential Created",
	"Producer Credential Rotated",
	"Producer Credential Revoked",
	"Audit Retention Changed",
	"Audit Legal Hold Placed",
	"Audit Legal Hold Released",
	"Audit Archive Restored",
}

var wantCategories = []string{
	"Audiences",
	"Audit Trail",
	"Broadcasts",
	"Computed Traits",
	"Consent Management",
	"Destination Filters",
	"Destinations",
	"Engage Warehouse Sources",
	"Functions",
	"Journeys",
	"Profiles Sync",
	"Sources",
	"Spaces",
	"Storage",
	"Tracking Plans",
	"Transformations",
	"Users",
	"Warehouses",
	"Workspace",
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestDocumentedNames(t *testing.T) {
	require.Len(t, documented, 66)
	for _, d := range documented {
		e, ok := catalogue.Lookup(d.name)
		require.True(t, ok, "missing %q", d.name)
		require.Equal(t, d.name, e.Name)
		require.Equal(t, d.category, e.Category, "category of %q", d.name)
	}
}

func TestProductEvents(t *testing.T) {
	for _, name := range productEvents {
		e, ok := catalogue.Lookup(name)
		require.True(t, ok, "missing %q", name)
		require.Equal(t, catalogue.CategoryAuditTrail, e.Category)
	}
}

func TestNoDuplicates(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range catalogue.All() {
		require.False(t, seen[e.Name], "duplicate %q", e.Name)
		seen[e.Name] = true
	}
	require.Len(t, seen, catalogue.Len())
}

func TestEntries(t *testing.T) {
	all := catalogue.All()
	require.Len(t, all, catalogue.Len())
	for _, e := range all {
		require.True(t, catalogue.IsCategory(e.Category), "%q: category %q", e.Name, e.Category)
		require.Regexp(t, snakeCase, e.ResourceType, "%q: resource type", e.Name)
		require.NotEmpty(t, e.Description, "%q: description", e.Name)
		require.True(t, strings.HasSuffix(e.Description, "."), "%q: description is a sentence", e.Name)
		require.True(t, catalogue.ValidCustomName(e.Name), "%q is not in the catalogue's own style", e.Name)

		got, ok := catalogue.Lookup(e.Name)
		require.True(t, ok)
		require.Equal(t, e, got)
	}
}

func TestCategories(t *testing.T) {
	require.Equal(t, wantCategories, catalogue.Categories())

	counts := map[string]int{}
	for _, e := range catalogue.All() {
		counts[e.Category]++
	}
	for _, c := range wantCategories {
		require.True(t, catalogue.IsCategory(c), c)
		require.GreaterOrEqual(t, counts[c], 3, "category %q", c)
	}
	require.Len(t, counts, len(wantCategories))

	for _, s := range []string{"", "users", "Users ", "Integrations", "Custom", catalogue.CustomCategory} {
		require.False(t, catalogue.IsCategory(s), "%q", s)
	}
}

func TestAllIsSortedCopy(t *testing.T) {
	all := catalogue.All()
	require.True(t, slices.IsSortedFunc(all, func(a, b catalogue.Entry) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	}))

	first := all[0]
	all[0].Name = "Changed"
	require.Equal(t, first, catalogue.All()[0])
	e, ok := catalogue.Lookup(first.Name)
	require.True(t, ok)
	require.Equal(t, first, e)

	cats := catalogue.Categories()
	cats[0] = "Changed"
	require.Equal(t, wantCategories, catalogue.Categories())
}

func TestLookupIsExact(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"Warehouses Disabled", true},
		{"Source Connected to Tracking Plan", true},
		{"Source Connected To Space", true},
		{"User Added via SSO", true},
		{"warehouses disabled", false},
		{"WAREHOUSES DISABLED", false},
		{"Source Connected To Tracking Plan", false},
		{"Source Connected to Space", false},
		{"User Added Via SSO", false},
		{" Warehouses Disabled", false},
		{"Warehouses Disabled ", false},
		{"Warehouses  Disabled", false},
		{"Warehouse Disabled", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := catalogue.Lookup(tt.name)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.name, e.Name)
			} else {
				require.Zero(t, e)
			}
		})
	}
}

func TestIsFailure(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Warehouse Run Failed", true},
		{"Audience Run Failed", true},
		{"Audience Destination Sync Failed", true},
		{"Computed Trait Run Failed", true},
		{"Computed Trait Destination Sync Failed", true},
		{"Profiles Sync Run Failed", true},
		{"Destination Sync Failed", true},
		{"Some Custom Job Run Failed", true}, // not catalogued, still a failure by name
		{"Profiles Sync Enabled", false},
		{"Warehouses Disabled", false},
		{"Violations Detected", false},
		{"Run Failed", false},
		{"Warehouse run failed", false},
		{"Warehouse Run Failed ", false},
		{"Audience Failed", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, catalogue.IsFailure(tt.name))
		})
	}

	// The catalogue's failure events are exactly its "Failed" events.
	for _, e := range catalogue.All() {
		require.Equal(t, strings.HasSuffix(e.Name, " Failed"), catalogue.IsFailure(e.Name), e.Name)
	}
}

func TestValidCustomName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"two words", "Invoice Paid", true},
		{"six words", "Billing Plan New Seat Limit Reached", true},
		{"acronym", "Report CSV Downloaded", true},
		{"digit first", "2FA Enabled", true},
		{"digits", "Plan V2 Enabled", true},
		{"connector via", "User Added via SAML", true},
		{"connector to", "Source Connected to Journey", true},
		{"100 bytes", "A" + strings.Repeat("b", 97) + " C", true},

		{"empty", "", false},
		{"one word", "Invoiced", false},
		{"seven words", "A B C D E F G", false},
		{"101 bytes", "A" + strings.Repeat("b", 98) + " C", false},
		{"leading space", " Invoice Paid", false},
		{"trailing space", "Invoice Paid ", false},
		{"double space", "Invoice  Paid", false},
		{"tab", "Invoice\tPaid", false},
		{"newline", "Invoice\nPaid", false},
		{"lower-case word", "Invoice paid", false},
		{"lower-case first", "invoice Paid", false},
		{"other connector", "Invoice Sent from Billing", false},
		{"connector first", "to Invoice Sent", false},
		{"connector last", "Invoice Sent to", false},
		{"capitalised connector is a word", "Invoice Sent To Customer", true},
		{"punctuation", "Invoice-Paid Sent", false},
		{"underscore", "Invoice_Paid Sent", false},
		{"non-ASCII letter", "Facture Émise", false},
		{"invalid UTF-8", "Invoice \xff\xfe", false},
		{"invalid UTF-8 start", "\xffInvoice Paid", false},
		{"NUL", "Invoice\x00 Paid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, catalogue.ValidCustomName(tt.in), "%q", tt.in)
		})
	}
}

func TestEntryJSON(t *testing.T) {
	e, ok := catalogue.Lookup("Warehouses Disabled")
	require.True(t, ok)
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"Warehouses Disabled","category":"Warehouses","resource_type":"warehouse","description":"A warehouse was disabled."}`, string(b))
}

func FuzzValidCustomName(f *testing.F) {
	for _, e := range catalogue.All() {
		f.Add(e.Name)
	}
	f.Add("")
	f.Add(" A B")
	f.Add("A  B")
	f.Add("A \xff")
	f.Fuzz(func(t *testing.T, s string) {
		if !catalogue.ValidCustomName(s) {
			return
		}
		require.LessOrEqual(t, len(s), 100)
		require.True(t, utf8.ValidString(s))
		words := strings.Split(s, " ")
		require.GreaterOrEqual(t, len(words), 2)
		require.LessOrEqual(t, len(words), 6)
		for _, w := range words {
			require.NotEmpty(t, w)
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	for b.Loop() {
		catalogue.Lookup("Audience Destination Sync Failed")
	}
}
