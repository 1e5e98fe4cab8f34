package migrations

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddedColumnsDDL checks migration 3's ALTERs: one per sender column,
// IF NOT EXISTS only where the server knows it, and on a cluster both the
// storage table and the Distributed table altered ON CLUSTER; new tables
// get the columns from the CREATE.
func TestAddedColumnsDDL(t *testing.T) {
	m := All()[2]
	require.Equal(t, uint32(3), m.Version)
	require.Equal(t, []string{"sender_credential_id", "sender_producer"}, []string{m.Adds[0].Name(), m.Adds[1].Name()})
	o := Options{Database: "audittrail", RetentionDays: 90}
	require.Equal(t, []string{
		"ALTER TABLE audittrail.audit_events ADD COLUMN sender_credential_id String DEFAULT ''",
		"ALTER TABLE audittrail.audit_events ADD COLUMN sender_producer String DEFAULT ''",
	}, m.Statements(o, Version{18, 16}))
	require.Equal(t, []string{
		"ALTER TABLE audittrail.audit_events ADD COLUMN IF NOT EXISTS sender_credential_id String DEFAULT ''",
		"ALTER TABLE audittrail.audit_events ADD COLUMN IF NOT EXISTS sender_producer String DEFAULT ''",
	}, m.Statements(o, current))

	o.Cluster = "audit"
	require.Equal(t, []string{
		"ALTER TABLE audittrail.audit_events_local ON CLUSTER audit ADD COLUMN IF NOT EXISTS sender_credential_id String DEFAULT ''",
		"ALTER TABLE audittrail.audit_events ON CLUSTER audit ADD COLUMN IF NOT EXISTS sender_credential_id String DEFAULT ''",
		"ALTER TABLE audittrail.audit_events_local ON CLUSTER audit ADD COLUMN IF NOT EXISTS sender_producer String DEFAULT ''",
		"ALTER TABLE audittrail.audit_events ON CLUSTER audit ADD COLUMN IF NOT EXISTS sender_producer String DEFAULT ''",
	}, m.Statements(o, Version{24, 8}))

	for _, v := range []Version{{18, 16}, current} {
		for _, opts := range []Options{{Database: "audittrail", RetentionDays: 90}, o} {
			create := strings.Join(All()[0].Statements(opts, v), "\n")
			for _, a := range m.Adds {
				require.Contains(t, create, "\n    "+a.Column, "a new table is created with %s", a.Name())
			}
		}
	}
}

// withoutSenderColumns turns CREATE statements of migration 1 into those
// of the schema before migration 3.
func withoutSenderColumns(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		for _, a := range senderColumns {
			s = strings.Replace(s, ",\n    "+a.Column, "", 1)
		}
		out[i] = s
	}
	return out
}
