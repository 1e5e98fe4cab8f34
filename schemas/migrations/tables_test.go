package migrations

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTablesAreEveryCreatedTable: the tables the start check requires are
// every table and view the migrations create (testdata/ddl.golden), but
// the cluster's storage tables, the bookkeeping table, the analysts' view
// and the events tables migration 5 makes and removes on its way; a
// migration that creates a table makes the check require it.
func TestTablesAreEveryCreatedTable(t *testing.T) {
	golden, err := os.ReadFile("testdata/ddl.golden")
	require.NoError(t, err)
	created := map[string]bool{}
	for _, m := range regexp.MustCompile(`CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS audittrail\.(\w+)`).FindAllStringSubmatch(string(golden), -1) {
		name := m[1]
		if strings.HasSuffix(name, "_local") || name == schemaMigrations.Name || name == LegacyTable || name == NextTable || name == AnalystView {
			continue
		}
		created[name] = true
	}
	want := make([]string, 0, len(created))
	for n := range created {
		want = append(want, n)
	}
	require.ElementsMatch(t, want, Tables())
}
