package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
)

func TestUsageErrorsExit2NamingTheFlag(t *testing.T) {
	env := config.FromMap(map[string]string{})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"delete"}, `unknown command "delete"`},
		{"create without operator", []string{"create", "-name", "w", "-workspaces", "*", "-categories", "*"}, "-operator"},
		{"create without name", []string{"create", "-operator", "a", "-workspaces", "*", "-categories", "*"}, "-name"},
		{"create without workspaces", []string{"create", "-operator", "a", "-name", "w", "-categories", "*"}, "-workspaces"},
		{"create without categories", []string{"create", "-operator", "a", "-name", "w", "-workspaces", "*"}, "-categories"},
		{"create with an unknown category", []string{"create", "-operator", "a", "-name", "w", "-workspaces", "*", "-categories", "Warehouse"}, `"Warehouse" is not a category`},
		{"create with a misplaced star", []string{"create", "-operator", "a", "-name", "w", "-workspaces", "ws_*_eu", "-categories", "*"}, "trailing *"},
		{"rotate without id", []string{"rotate", "-operator", "a"}, "-id"},
		{"rotate without operator", []string{"rotate", "-id", "pc_x"}, "-operator"},
		{"rotate with a bad grace", []string{"rotate", "-operator", "a", "-id", "pc_x", "-grace", "a day"}, "-grace"},
		{"rotate with a negative grace", []string{"rotate", "-operator", "a", "-id", "pc_x", "-grace", "-1h"}, "-grace"},
		{"revoke without id", []string{"revoke", "-operator", "a"}, "-id"},
		{"unknown flag", []string{"list", "-operator", "a"}, "-operator"},
		{"stray argument", []string{"revoke", "-operator", "a", "-id", "pc_x", "now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, env, &stdout, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
			require.Contains(t, stderr.String(), "usage: credentials")
			require.Empty(t, stdout.String())
		})
	}
}

func TestParseTakesDefaultsFromTheEnvironment(t *testing.T) {
	o, err := parse([]string{"rotate", "-operator", "a", "-id", "pc_x"}, config.FromMap(map[string]string{
		"AUDITTRAIL_KAFKA_BROKERS": "k1:9092,k2:9092", "AUDITTRAIL_CREDENTIALS_TOPIC": "creds", "AUDITTRAIL_KAFKA_TOPIC": "evs"}))
	require.NoError(t, err)
	require.Equal(t, []string{"k1:9092", "k2:9092"}, o.kafka.Brokers)
	require.Equal(t, "creds", o.credentialsTopic)
	require.Equal(t, "evs", o.kafka.Topic)
	require.Equal(t, "24h0m0s", o.grace.String())
}
