package admin

import (
	"context"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// ClickHousePolicies are the policies of a ClickHouse database
// (internal/retentionpolicy). Safe for concurrent use.
type ClickHousePolicies struct {
	conn        Conn
	schema      migrations.Options
	defaultDays int
}

// NewClickHousePolicies returns the policies of database; a workspace
// without one has defaultDays (AUDITTRAIL_RETENTION_DAYS) and no hold.
// conn is what a restore needs, too.
func NewClickHousePolicies(conn Conn, database string, defaultDays int) *ClickHousePolicies {
	return &ClickHousePolicies{conn: conn, schema: migrations.Options{Database: database}, defaultDays: defaultDays}
}

// OnCluster makes p look up queued deletes on every node of cluster (the
// schema's cluster; empty: a single server). It returns p and must be
// called before p is used.
func (p *ClickHousePolicies) OnCluster(cluster string) *ClickHousePolicies {
	p.schema.Cluster = cluster
	return p
}

// ProtectHeld implements HoldGuard with retentionpolicy.Protect.
func (p *ClickHousePolicies) ProtectHeld(ctx context.Context, previous Policy) ([]string, error) {
	return retentionpolicy.Protect(ctx, p.conn, p.schema, previous.Workspace, p.defaultDays, time.Now())
}

// Get implements Policies.
func (p *ClickHousePolicies) Get(ctx context.Context, workspace string) (Policy, error) {
	return retentionpolicy.Get(ctx, p.conn, p.schema.Database, workspace, p.defaultDays)
}

// Set implements Policies.
func (p *ClickHousePolicies) Set(ctx context.Context, pol Policy) error {
	return retentionpolicy.Set(ctx, p.conn, p.schema.Database, pol)
}

// All implements Policies.
func (p *ClickHousePolicies) All(ctx context.Context) (map[string]Policy, error) {
	return retentionpolicy.All(ctx, p.conn, p.schema.Database)
}
