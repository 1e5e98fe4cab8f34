package zones

import (
	"archive/zip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/openapi"
)

// TestEveryNameLoads: each accepted name loads, as itself (no alias
// renames it), and the cache answers the same location.
func TestEveryNameLoads(t *testing.T) {
	require.Greater(t, len(Names()), 500)
	require.True(t, Known("UTC"))
	for _, n := range Names() {
		l, err := Load(n)
		require.NoError(t, err, n)
		require.Equal(t, n, l.String())
		again, err := Load(n)
		require.NoError(t, err)
		require.Same(t, l, again)
	}
}

// TestUnknownNamesAreRefused: names the list lacks, however close.
func TestUnknownNamesAreRefused(t *testing.T) {
	for _, n := range []string{"", "Local", "utc", "europe/paris", "Europe/Paris/", "Mars/Olympus", "../etc/passwd",
		"Europe/../Europe/Paris", "Europe/Paris\x00", " UTC", "Etc/GMT+15"} {
		require.False(t, Known(n), "%q", n)
		_, err := Load(n)
		require.Error(t, err, "%q", n)
	}
}

// TestNamesAreTheGoReleases: the list is the zoneinfo.zip of the Go
// release building it (the data time/tzdata embeds); after a Go upgrade
// that changed it, go generate ./query-api/zones.
func TestNamesAreTheGoReleases(t *testing.T) {
	zip := filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip")
	if _, err := os.Stat(zip); err != nil {
		t.Skipf("no %s in this Go installation", zip)
	}
	got, err := zipNames(zip)
	require.NoError(t, err)
	require.Equal(t, got, Names(), "run go generate ./query-api/zones")
}

// TestDocumentListsTheNames: the OpenAPI document's TimeZone enum is the
// list, in order (go generate ./query-api/zones writes both).
func TestDocumentListsTheNames(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				TimeZone struct {
					Type    string   `json:"type"`
					Default string   `json:"default"`
					Enum    []string `json:"enum"`
				} `json:"TimeZone"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	tz := doc.Components.Schemas.TimeZone
	require.Equal(t, "string", tz.Type)
	require.Equal(t, "UTC", tz.Default)
	require.Equal(t, Names(), tz.Enum, "run go generate ./query-api/zones")
}

// zipNames are the sorted file names of a zoneinfo.zip.
func zipNames(path string) ([]string, error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		if !strings.HasSuffix(f.Name, "/") {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}
