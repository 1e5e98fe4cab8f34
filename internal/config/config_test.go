package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEnvParsesAndCollectsErrors(t *testing.T) {
	e := FromMap(map[string]string{
		"A": " x ", "L": "a, b,,c", "I": "12", "B": "true", "D": "250ms",
		"BAD_I": "twelve", "BAD_B": "yes please", "BAD_D": "5 seconds",
	})
	require.Equal(t, "x", String{Var: Var{Name: "A"}, Default: "def"}.Get(e))
	require.Equal(t, "def", String{Var: Var{Name: "MISSING"}, Default: "def"}.Get(e))
	require.Equal(t, []string{"a", "b", "c"}, List{Var: Var{Name: "L"}}.Get(e))
	require.Equal(t, []string{"p", "q"}, List{Var: Var{Name: "MISSING"}, Default: "p,q"}.Get(e))
	require.Equal(t, 12, Int{Var: Var{Name: "I"}, Default: 1}.Get(e))
	require.True(t, Bool{Var: Var{Name: "B"}}.Get(e))
	require.Equal(t, 250*time.Millisecond, Duration{Var: Var{Name: "D"}, Default: time.Second}.Get(e))
	require.Equal(t, 3*time.Second, Duration{Var: Var{Name: "MISSING"}, Default: time.Second}.GetOr(e, 3*time.Second))
	require.NoError(t, e.Err())

	require.Equal(t, 7, Int{Var: Var{Name: "BAD_I"}, Default: 7}.Get(e))
	require.True(t, Bool{Var: Var{Name: "BAD_B"}, Default: true}.Get(e))
	require.Equal(t, time.Second, Duration{Var: Var{Name: "BAD_D"}, Default: time.Second}.Get(e))
	err := e.Err()
	require.ErrorContains(t, err, `BAD_I="twelve": want an integer`)
	require.ErrorContains(t, err, `BAD_B="yes please": want true or false`)
	require.ErrorContains(t, err, `BAD_D="5 seconds": want a duration such as "500ms" or "5s"`)

	// A declared variable's parse error says what it accepts.
	e = FromMap(map[string]string{RetentionDays.Name: "ninety", WriterBatchAge.Name: "soon"})
	RetentionDays.Get(e)
	WriterBatchAge.Get(e)
	require.EqualError(t, e.Err(), `AUDITTRAIL_RETENTION_DAYS="ninety": want an integer, 1-3650`+"\n"+
		`AUDITTRAIL_WRITER_BATCH_AGE="soon": want a duration such as "500ms" or "5s", 1ms-1m`)
}

// TestChecksNameTheVariableAndWhatItAccepts: every validation message
// derives from the declaration, so it names the variable and the accepted
// values as docs/configuration.md shows them.
func TestChecksNameTheVariableAndWhatItAccepts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{RetentionDays.Check(0), "AUDITTRAIL_RETENTION_DAYS=0: want 1-3650"},
		{RetentionDays.Check(3651), "AUDITTRAIL_RETENTION_DAYS=3651: want 1-3650"},
		{WriterBatchAge.Check(0), "AUDITTRAIL_WRITER_BATCH_AGE=0s: want 1ms-1m"},
		{WriterSessionTimeout.Check(time.Second), "AUDITTRAIL_WRITER_SESSION_TIMEOUT=1s: want 6s-5m (the broker's group session bounds)"},
		{IngestWorkspaceBurst.Check(999), "AUDITTRAIL_INGEST_WORKSPACE_BURST=999: want at least 1000 (a full batch)"},
		{IngestCredentialRate.Check(-1), "AUDITTRAIL_INGEST_CREDENTIAL_RATE=-1: want at least 0 (0 turns the limit off)"},
		{ClickHouseCompression.Check("gzip"), `AUDITTRAIL_CLICKHOUSE_COMPRESSION="gzip": want auto, lz4, zstd or none`},
		{KafkaBrokers.Check(nil), "AUDITTRAIL_KAFKA_BROKERS is empty: want host:port[,host:port...]"},
		{WriterGroup.Check(""), "AUDITTRAIL_WRITER_GROUP is empty: want a consumer group id"},
		{ClickHouseDatabase.Invalid("a-b"), `AUDITTRAIL_CLICKHOUSE_DATABASE="a-b": want letters, digits and underscores`},
	} {
		require.EqualError(t, tc.err, tc.want)
	}
	for _, ok := range []error{
		RetentionDays.Check(1), RetentionDays.Check(3650), WriterBatchAge.Check(time.Minute),
		IngestCredentialRate.Check(0), ClickHouseCompression.Check("zstd"), KafkaBrokers.Check([]string{"k:9092"}),
		ClickHouseCluster.Check(""),
	} {
		require.NoError(t, ok)
	}
	for _, v := range Variables {
		require.NotEmpty(t, v.Accepts, "%s says what it accepts", v.Name)
		require.NotEmpty(t, v.Readers, "%s says who reads it", v.Name)
		require.NotEmpty(t, v.Description, v.Name)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 2184 * time.Hour: "2184h", 90 * time.Minute: "1h30m", time.Minute: "1m",
		250 * time.Millisecond: "250ms", 10 * time.Second: "10s", 0: "0s",
	} {
		require.Equal(t, want, FormatDuration(d))
	}
}

func TestUnknownNamesTypos(t *testing.T) {
	got := Unknown([]string{"AUDITTRAIL_KAFKA_BROKERS=1", "AUDITTRAIL_KAFAK_BROKERS=x", "PATH=/bin"})
	require.Equal(t, []string{"AUDITTRAIL_KAFAK_BROKERS"}, got)
}

// TestConfigurationDocIsCurrent keeps docs/configuration.md in step with
// the declarations. To regenerate: go generate ./internal/config.
func TestConfigurationDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	require.Equal(t, string(Markdown()), string(doc),
		"docs/configuration.md is out of step with internal/config: run go generate ./internal/config")
}

func TestVariablesAreDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variables {
		require.True(t, strings.HasPrefix(v.Name, Prefix), v.Name)
		require.False(t, seen[v.Name], "%s is declared twice", v.Name)
		seen[v.Name] = true
		got, ok := Lookup(v.Name)
		require.True(t, ok)
		require.Equal(t, v, got)
	}
	_, ok := Lookup("AUDITTRAIL_KAFAK_BROKERS")
	require.False(t, ok)
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
