package catalogue

import (
	"slices"
	"strings"
)

// Entry describes one catalogue event.
type Entry struct {
	// Name is the exact event name, e.g. "Warehouses Disabled".
	Name string `json:"name"`
	// Category is the product area, one of [Categories].
	Category string `json:"category"`
	// ResourceType is the snake_case type of the resource the event is
	// about, e.g. "warehouse" or "tracking_plan".
	ResourceType string `json:"resource_type"`
	// Description says in one sentence what happened.
	Description string `json:"description"`
}

// Categories (product areas) of the catalogue.
const (
	CategorySources                = "Sources"
	CategoryFunctions              = "Functions"
	CategoryWarehouses             = "Warehouses"
	CategoryDestinations           = "Destinations"
	CategoryStorage                = "Storage"
	CategoryConsentManagement      = "Consent Management"
	CategoryTrackingPlans          = "Tracking Plans"
	CategoryDestinationFilters     = "Destination Filters"
	CategoryTransformations        = "Transformations"
	CategoryAudiences              = "Audiences"
	CategoryComputedTraits         = "Computed Traits"
	CategoryEngageWarehouseSources = "Engage Warehouse Sources"
	CategoryProfilesSync           = "Profiles Sync"
	CategorySpaces                 = "Spaces"
	CategoryUsers                  = "Users"
	CategoryJourneys               = "Journeys"
	CategoryBroadcasts             = "Broadcasts"
	CategoryWorkspace              = "Workspace"
	CategoryAuditTrail             = "Audit Trail"
)

// CustomCategory is the category given elsewhere to events whose name is not
// in the catalogue. It is not one of [Categories]: IsCategory(CustomCategory)
// is false.
const CustomCategory = "Custom"

var categories = sortedCopy([]string{
	CategorySources,
	CategoryFunctions,
	CategoryWarehouses,
	CategoryDestinations,
	CategoryStorage,
	CategoryConsentManagement,
	CategoryTrackingPlans,
	CategoryDestinationFilters,
	CategoryTransformations,
	CategoryAudiences,
	CategoryComputedTraits,
	CategoryEngageWarehouseSources,
	CategoryProfilesSync,
	CategorySpaces,
	CategoryUsers,
	CategoryJourneys,
	CategoryBroadcasts,
	CategoryWorkspace,
	CategoryAuditTrail,
})

// sorted holds the table ordered by category, then name; byName indexes it.
var (
	sorted = sortEntries(table)
	byName = indexEntries(sorted)
)

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func sortEntries(es []Entry) []Entry {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b Entry) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return es
}

func indexEntries(es []Entry) map[string]int {
	m := make(map[string]int, len(es))
	for i, e := range es {
		m[e.Name] = i
	}
	return m
}

// Lookup returns the entry whose name is exactly name. Matching is
// case-sensitive and does not trim or collapse spaces.
func Lookup(name string) (Entry, bool) {
	i, ok := byName[name]
	if !ok {
		return Entry{}, false
	}
	return sorted[i], true
}

// All returns every entry, sorted by category and then by name. The slice is
// a new copy on each call; the caller may modify it.
func All() []Entry {
	return slices.Clone(sorted)
}

// Len returns the number of events in the catalogue.
func Len() int {
	return len(sorted)
}

// Categories returns the catalogue's categories (product areas), sorted. The
// slice is a new copy on each call. [CustomCategory] is not among them.
func Categories() []string {
	return slices.Clone(categories)
}

// IsCategory reports whether s is exactly one of [Categories].
func IsCategory(s string) bool {
	_, ok := slices.BinarySearch(categories, s)
	return ok
}

// IsFailure reports whether name is a failure event: one whose name ends in
// " Run Failed" or " Sync Failed", such as "Audience Run Failed". Failure
// events come from background jobs that retry, so several may be recorded
// for one final failure. The name need not be in the catalogue.
func IsFailure(name string) bool {
	return strings.HasSuffix(name, " Run Failed") || strings.HasSuffix(name, " Sync Failed")
}
