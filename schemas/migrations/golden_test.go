package migrations

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/ddl.golden from the current migrations")

// TestDDLIsUnchanged compares every statement the migrations emit (single
// server and cluster, before and after TTL support, and the ALTERs of
// added columns, the TTL changes) and the INSERTs writers send with
// testdata/ddl.golden. Deployed servers record which versions ran, so what
// a recorded version creates must not change. The one deliberate change is
// a new column: it joins its table's CREATE and a new migration adds it to
// existing tables (as migration 3 did), or a new migration (as migration 5,
// the events layout, which creates the new events table beside the old);
// then go test -run
// TestDDLIsUnchanged -update rewrites the file, and its diff is reviewed.
func TestDDLIsUnchanged(t *testing.T) {
	var b strings.Builder
	for _, o := range []Options{
		{Database: "audittrail", RetentionDays: 90},
		{Database: "audittrail", RetentionDays: 90, Cluster: "audit"},
	} {
		for _, v := range []Version{{18, 16}, {24, 8}} {
			fmt.Fprintf(&b, "=== cluster=%q server=%s prepare\n", o.Cluster, v)
			for _, s := range Prepare(o) {
				fmt.Fprintf(&b, "%s;\n", s)
			}
			for _, m := range All() {
				fmt.Fprintf(&b, "=== cluster=%q server=%s migration %d (%s)\n", o.Cluster, v, m.Version, m.Name)
				for _, s := range m.Statements(o, v) {
					fmt.Fprintf(&b, "%s;\n", s)
				}
				for _, a := range m.Adds {
					fmt.Fprintf(&b, "-- adds %s.%s: %s\n", a.Table, a.Name(), a.Column)
				}
			}
			if v.SupportsTTL() {
				fmt.Fprintf(&b, "=== cluster=%q server=%s retention\n", o.Cluster, v)
				for _, t := range ttlTables(o.RetentionDays) {
					fmt.Fprintf(&b, "%s;\n", ttlChange(o, t.table, t.ttl, false))
				}
			}
		}
	}
	b.WriteString("=== inserts\n")
	for _, s := range []string{
		Events.Insert("audittrail"), EventIDs.Insert("audittrail"), PartitionCounts.Insert("audittrail"), schemaMigrations.Insert("audittrail"),
		Leaves.Insert("audittrail"), Hashes.Insert("audittrail"), Checkpoints.Insert("audittrail"), Policies.Insert("audittrail"), KeptInsert("audittrail"),
		Offsets.Insert("audittrail"),
	} {
		fmt.Fprintf(&b, "%s;\n", s)
	}
	const path = "testdata/ddl.golden"
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String(), "the DDL changed: only a new column, added by a new migration, may change it (then -update)")
}
