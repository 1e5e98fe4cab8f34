package admin

import (
	"context"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// ClickHousePolicies are the policies of a ClickHouse database
// (internal/retentionpolicy). Safe for concurrent use.
type ClickHousePolicies struct {
	conn        retentionpolicy.Conn
	database    string
	defaultDays int
}

// NewClickHousePolicies returns the policies of database; a workspace
// without one has defaultDays (AUDITTRAIL_RETENTION_DAYS) and no hold.
func NewClickHousePolicies(conn retentionpolicy.Conn, database string, defaultDays int) *ClickHousePolicies {
	return &ClickHousePolicies{conn: conn, database: database, defaultDays: defaultDays}
}

// Get implements Policies.
func (p *ClickHousePolicies) Get(ctx context.Context, workspace string) (Policy, error) {
	return retentionpolicy.Get(ctx, p.conn, p.database, workspace, p.defaultDays)
}

// Set implements Policies.
func (p *ClickHousePolicies) Set(ctx context.Context, pol Policy) error {
	return retentionpolicy.Set(ctx, p.conn, p.database, pol)
}

// All implements Policies.
func (p *ClickHousePolicies) All(ctx context.Context) (map[string]Policy, error) {
	return retentionpolicy.All(ctx, p.conn, p.database)
}
