package migrations

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTTLIsChangedOnlyWhenItDiffers(t *testing.T) {
	o := Options{Database: "audittrail", RetentionDays: 30}
	require.Empty(t, ttlChange(o, Table, retentionTTL(30), true), "a table that already has the TTL is not altered (MODIFY TTL rewrites every part)")
	require.Equal(t, "ALTER TABLE audittrail.audit_events MODIFY TTL timestamp + toIntervalDay(30)", ttlChange(o, Table, retentionTTL(30), false))
	require.Equal(t, "ALTER TABLE audittrail.audit_event_ids MODIFY TTL stored_at + toIntervalDay(31)", ttlChange(o, IDsTable, registryTTL(30), false))
	// The clauses looked for in engine_full are the ones the DDL creates.
	require.Contains(t, ddlOf(t, 0, o), retentionTTL(30))
	require.Contains(t, ddlOf(t, 1, o), registryTTL(30))
	o.Cluster = "prod"
	require.Contains(t, ttlChange(o, Table, retentionTTL(30), false), " ON CLUSTER prod MODIFY TTL timestamp + toIntervalDay(30)")
}

func TestTheRegistryOutlivesTheEventsByADay(t *testing.T) {
	require.Equal(t, 91, IDsRetentionDays(90))
	require.Equal(t, "TTL stored_at + toIntervalDay(91)", registryTTL(90))
}

func ddlOf(t *testing.T, migration int, o Options) string {
	t.Helper()
	return strings.Join(All()[migration].Statements(o, Version{24, 8}), "\n")
}
