package sealer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// queryConn records the INSERT statements it prepares and encodes their
// rows as the driver does (encodingConn, with the leaves' columns).
type queryConn struct {
	encodingConn
	queries []string
}

func (c *queryConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.queries = append(c.queries, query)
	return c.encodingConn.PrepareBatch(ctx, migrations.Leaves.Insert("bench"), opts...)
}

// TestLeavesGoToTheirTables: Append's leaves go into the leaves table,
// AppendKept's into the long-term leaves table, each in one INSERT.
func TestLeavesGoToTheirTables(t *testing.T) {
	conn := &queryConn{}
	s := NewClickHouseStore(conn, "db")
	leaves := []migrations.Leaf{{WorkspaceID: "ws", Index: 1, TimestampNs: 2, ID: "e", Hash: strings.Repeat("h", 32), SealedAt: time.Unix(3, 0)}}
	require.NoError(t, s.Append(context.Background(), nil, leaves))
	require.NoError(t, s.AppendKept(context.Background(), leaves))
	require.Len(t, conn.queries, 2)
	require.True(t, strings.HasPrefix(conn.queries[0], "INSERT INTO db."+migrations.LeavesTable+" ("), conn.queries[0])
	require.True(t, strings.HasPrefix(conn.queries[1], "INSERT INTO db."+migrations.KeptLeavesTable+" ("), conn.queries[1])
}
