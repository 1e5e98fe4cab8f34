package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestREADMEDocumentsEveryVariable keeps the configuration tables of the
// manual (README.md and docs/*.md, which moved out of the README) in step
// with the variables the components read: each is a table row's first cell.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	var manual strings.Builder
	for _, f := range append([]string{"../../README.md"}, files...) {
		text, err := os.ReadFile(f)
		require.NoError(t, err)
		manual.Write(text)
	}
	for _, v := range Variables {
		row := regexp.MustCompile("(?m)^\\| (`[A-Z0-9_]+` / )?`" + v.Name + "`( / `[A-Z0-9_]+`)? \\|")
		require.True(t, row.MatchString(manual.String()), "the manual documents %s in a configuration table (README.md or docs/*.md)", v.Name)
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
