package deploy

import (
	"context"
	"encoding/xml"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestTheOneWorkspaceAnalystFiltersEveryTableWithWorkspaces: the cluster
// config's example analyst of one workspace has a row filter on every
// table the migrations make (18.16, all migrations applied) that holds a
// workspace_id, and on its storage table (_local): a table added by a
// migration without its filter would show that analyst every workspace's
// rows.
func TestTheOneWorkspaceAnalystFiltersEveryTableWithWorkspaces(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT DISTINCT table FROM system.columns
WHERE database = ? AND name = 'workspace_id' AND table NOT IN (SELECT name FROM system.tables WHERE database = ? AND engine IN ('View', 'MaterializedView'))`,
		cfg.Database, cfg.Database)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Contains(t, tables, migrations.KeptTable, "the migrations' tables were read")

	raw, err := os.ReadFile("clickhouse/cluster/users.d/audittrail.xml")
	require.NoError(t, err)
	var conf struct {
		Users struct {
			Example struct {
				Databases struct {
					Audittrail struct {
						Tables []struct {
							XMLName xml.Name
							Filter  string `xml:"filter"`
						} `xml:",any"`
					} `xml:"audittrail"`
				} `xml:"databases"`
			} `xml:"analyst_ws_example"`
		} `xml:"users"`
	}
	require.NoError(t, xml.Unmarshal(raw, &conf))
	filters := map[string]string{}
	for _, tb := range conf.Users.Example.Databases.Audittrail.Tables {
		filters[tb.XMLName.Local] = strings.TrimSpace(tb.Filter)
	}
	for _, name := range tables {
		for _, n := range []string{name, name + migrations.LocalSuffix} {
			require.Equal(t, "workspace_id = 'ws_example'", filters[n], "analyst_ws_example's filter of %s", n)
		}
	}
}
