package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
)

// TestBurstMinimumIsAFullBatch: the bursts' declared minimum is a full
// batch, or no batch of that size could ever pass.
func TestBurstMinimumIsAFullBatch(t *testing.T) {
	require.Equal(t, MaxBatch, config.IngestWorkspaceBurst.Min)
	require.Equal(t, MaxBatch, config.IngestCredentialBurst.Min)
}
