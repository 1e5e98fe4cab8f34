package migrations

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTTLIsChangedOnlyWhenItDiffers(t *testing.T) {
	o := Options{Database: "audittrail", RetentionDays: 30}
	require.Empty(t, ttlChange(o, true), "a table that already has the TTL is not altered (MODIFY TTL rewrites every part)")
	require.Equal(t, "ALTER TABLE audittrail.audit_events MODIFY TTL timestamp + toIntervalDay(30)", ttlChange(o, false))
	o.Cluster = "prod"
	require.Contains(t, ttlChange(o, false), " ON CLUSTER prod MODIFY TTL timestamp + toIntervalDay(30)")
	// The clause looked for in engine_full is the one the DDL creates.
	require.Contains(t, eventsDDLFor(t, o), retentionTTL(30))
}

func eventsDDLFor(t *testing.T, o Options) string {
	t.Helper()
	for _, s := range All()[0].Statements(o, Version{24, 8}) {
		if len(s) > 0 {
			return s
		}
	}
	t.Fatal("no DDL for the events table")
	return ""
}
