package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
)

func TestAdminConfig(t *testing.T) {
	token := strings.Repeat("t", 40)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" for no error
	}{
		{"off", map[string]string{}, ""},
		{"off, tokens ignored", map[string]string{"AUDITTRAIL_ADMIN_TOKENS": "bad"}, ""},
		{"on", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, ""},
		{"on without tokens", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8085"}, "AUDITTRAIL_ADMIN_TOKENS is required"},
		{"a short token", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:short"}, "AUDITTRAIL_ADMIN_TOKENS: entry 1 (ops)"},
		{"the owners' listener", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8080", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, "AUDITTRAIL_ADMIN_ADDR=\"127.0.0.1:8080\""},
		{"the owners' port on every address", map[string]string{"AUDITTRAIL_ADMIN_ADDR": ":8080", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token, "AUDITTRAIL_ADMIN_ALLOW_REMOTE": "true"}, "a port other than"},
		{"not loopback", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "0.0.0.0:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, "a loopback address"},
		{"a private address", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "10.0.0.5:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, "AUDITTRAIL_ADMIN_ALLOW_REMOTE=true"},
		{"remote allowed", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "0.0.0.0:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token, "AUDITTRAIL_ADMIN_ALLOW_REMOTE": "true"}, ""},
		{"ipv6 loopback", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "[::1]:8085", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, ""},
		{"no port", map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}, "AUDITTRAIL_ADMIN_ADDR"},
		{"a relative archive", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": "archive"}, "AUDITTRAIL_ARCHIVE_DIR=\"archive\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := adminFromEnv(config.FromMap(tc.env), "127.0.0.1:8080")
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), token)
			_ = c
		})
	}
	// Port 0 for both (tests): each listener gets a port of its own.
	_, err := adminFromEnv(config.FromMap(map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:0", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}), "127.0.0.1:0")
	require.NoError(t, err)
	_, err = adminFromEnv(config.FromMap(map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8080", "AUDITTRAIL_ADMIN_TOKENS": "ops:" + token}), "127.0.0.1:8080")
	require.ErrorContains(t, err, "a port other than")
	c, err := adminFromEnv(config.FromMap(map[string]string{"AUDITTRAIL_ADMIN_ADDR": "127.0.0.1:8085",
		"AUDITTRAIL_ADMIN_TOKENS": "ops:" + token + ",alice:" + strings.Repeat("a", 32), "AUDITTRAIL_ARCHIVE_DIR": "/var/lib/audittrail/archive"}), "127.0.0.1:8080")
	require.NoError(t, err)
	require.Len(t, c.Operators, 2)
	require.Equal(t, "/var/lib/audittrail/archive", c.ArchiveDir)
}
