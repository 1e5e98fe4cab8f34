package config

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvParsesAndCollectsErrors(t *testing.T) {
	e := FromMap(map[string]string{
		"A": " x ", "L": "a, b,,c", "I": "12", "B": "true", "D": "250ms",
		"BAD_I": "twelve", "BAD_D": "5 seconds",
	})
	require.Equal(t, "x", e.String("A", "def"))
	require.Equal(t, "def", e.String("MISSING", "def"))
	require.Equal(t, []string{"a", "b", "c"}, e.List("L", ""))
	require.Equal(t, []string{"p", "q"}, e.List("MISSING", "p,q"))
	require.Equal(t, 12, e.Int("I", 1))
	require.True(t, e.Bool("B", false))
	require.Equal(t, 250*time.Millisecond, e.Duration("D", time.Second))
	require.NoError(t, e.Err())

	require.Equal(t, 7, e.Int("BAD_I", 7))
	require.Equal(t, time.Second, e.Duration("BAD_D", time.Second))
	err := e.Err()
	require.ErrorContains(t, err, `BAD_I="twelve": want an integer`)
	require.ErrorContains(t, err, `BAD_D="5 seconds"`)
}

func TestUnknownNamesTypos(t *testing.T) {
	got := Unknown([]string{"AUDITTRAIL_KAFKA_BROKERS=1", "AUDITTRAIL_KAFAK_BROKERS=x", "PATH=/bin"})
	require.Equal(t, []string{"AUDITTRAIL_KAFAK_BROKERS"}, got)
}

// TestREADMEDocumentsEveryVariable keeps the README's configuration in step
// with the variables the components read.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, v := range Variables {
		require.Contains(t, string(readme), "`"+v.Name+"`", "README documents %s", v.Name)
	}
}

// TestOperatorContract pins the names and defaults operators and scripts
// rely on; changing one breaks deployments, so it must be deliberate.
func TestOperatorContract(t *testing.T) {
	want := map[string]string{
		"AUDITTRAIL_KAFKA_BROKERS":   "127.0.0.1:9092",
		"AUDITTRAIL_CLICKHOUSE_ADDR": "127.0.0.1:9000",
		"AUDITTRAIL_INGEST_ADDR":     "127.0.0.1:8081",
		"AUDITTRAIL_API_ADDR":        "127.0.0.1:8080",
		"AUDITTRAIL_INGEST_TOKENS":   "",
		"AUDITTRAIL_JWT_SECRET":      "",
		"AUDITTRAIL_RETENTION_DAYS":  "90",
		// No proxy is trusted unless the operator names it.
		"AUDITTRAIL_TRUSTED_PROXIES": "",
	}
	got := map[string]string{}
	for _, v := range Variables {
		if _, ok := want[v.Name]; ok {
			got[v.Name] = v.Default
		}
	}
	require.Equal(t, want, got)
}
