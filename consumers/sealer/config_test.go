package sealer

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/config"
)

// TestTheSealersWindow: the deployment's window comes from
// AUDITTRAIL_RETENTION_DAYS, is checked as the other services check it,
// and must leave the lookback (keys decided in memory) clear of late
// keys.
func TestTheSealersWindow(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.local")
	require.NoError(t, err)
	c := FromEnv(config.FromMap(map[string]string{config.RetentionDays.Name: "400", config.SigningKey.Name: skey, config.VerifierKeys.Name: vkey}), "events")
	require.Equal(t, 400, c.RetentionDays)
	require.NoError(t, c.Validate())
	require.Equal(t, config.RetentionDays.Default, Defaults().RetentionDays)
	for _, tc := range []struct {
		name     string
		days     int
		lookback time.Duration
		err      string
	}{
		{"no window", 0, 2 * time.Hour, "AUDITTRAIL_RETENTION_DAYS=0: want 1-3650"},
		{"past the maximum", 3651, 2 * time.Hour, "AUDITTRAIL_RETENTION_DAYS=3651: want 1-3650"},
		{"a lookback reaching late keys", 1, 23 * time.Hour, "Lookback (23h0m0s) must be shorter than AUDITTRAIL_RETENTION_DAYS (1 days) less 1h0m0s"},
		{"one day", 1, 22*time.Hour + 59*time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c
			c.RetentionDays, c.Lookback = tc.days, tc.lookback
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}
