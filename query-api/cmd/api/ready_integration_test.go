package main

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// The API does not migrate: it reports not ready, naming the missing
// migrations, until the migrate job or the writer has applied them.
func TestNotReadyUntilTheSchemaIsCurrent(t *testing.T) {
	proctest.Require(t)
	conn, cfg := stacktest.ClickHouseConn(t)
	require.NotNil(t, conn)
	defer conn.Close()
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) }()
	ready := schemaReady(conn, cfg.Database)
	ctx := context.Background()

	var behind *migrations.BehindError
	require.True(t, errors.As(ready(ctx), &behind))
	require.Len(t, behind.Missing, len(migrations.All()))
	require.Error(t, ready(ctx), "still not ready: the API changed nothing")

	_, err := migrations.Apply(ctx, conn, migrations.Options{Database: cfg.Database, RetentionDays: 90})
	require.NoError(t, err)
	require.NoError(t, ready(ctx))
}
