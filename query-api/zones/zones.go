// Package zones is the set of time zone names the API accepts (the tz
// parameter of the timeline): the IANA database as Go embeds it (time/tzdata,
// imported here, so every name loads on any host), listed in names.go,
// which go generate writes from the Go release's lib/time/zoneinfo.zip, and
// in the OpenAPI document's TimeZone enum, which the same command rewrites.
// Tests hold the list, the Go release and the document to each other.
package zones

//go:generate go run ./cmd/zonelist -names names.go -openapi ../../schemas/openapi/openapi.json

import (
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // every listed name loads even where the host has no zone files
)

// known are the names, for Known.
var known = func() map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}()

// Names returns the accepted names, sorted. The caller must not modify it.
func Names() []string { return names }

// Known reports whether name is an accepted zone name (exactly, case
// included).
func Known(name string) bool { return known[name] }

// loaded caches Load's locations by name (at most len(names) entries).
var loaded sync.Map

// Load returns the location of an accepted name: the host's zone files
// when they have it, else Go's embedded copy. It is safe for concurrent
// use. A name that is not Known is an error.
func Load(name string) (*time.Location, error) {
	if !known[name] {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	if l, ok := loaded.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("load time zone %q: %w", name, err)
	}
	loaded.Store(name, l)
	return l, nil
}
