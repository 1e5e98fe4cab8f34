package chdbtest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
)

func TestBindWritesLiteralsAsClickHouseGoDoes(t *testing.T) {
	server, err := time.LoadLocation("Etc/UTC")
	require.NoError(t, err)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		query string
		args  []any
		want  string
	}{
		{"SELECT ?", []any{`O'Brien \ "x"` + "\x00"}, `SELECT 'O\'Brien \\ "x"\0'`},
		{"SELECT ?, ?, ?, ?", []any{int64(-5), uint32(7), true, nil}, "SELECT -5, 7, 1, NULL"},
		{"SELECT '?', `a?`, \\?, ?", []any{"v"}, "SELECT '?', `a?`, ?, 'v'"},
		{"SELECT 'it\\'s ?', ?", []any{1}, "SELECT 'it\\'s ?', 1"},
		{"SELECT ?", []any{at}, "SELECT toDateTime('2026-03-04 05:06:07', 'UTC')"},
		{"SELECT ?", []any{at.In(server)}, "SELECT toDateTime('2026-03-04 05:06:07')"},
		{"SELECT ?", []any{at.In(berlin)}, "SELECT toDateTime('2026-03-04 06:06:07', 'Europe/Berlin')"},
		{"SELECT ?", []any{at.Local()}, "SELECT toDateTime('1772600767')"},
		{"SELECT 1", nil, "SELECT 1"},
	} {
		got, err := chdbtest.Bind(server, tc.query, tc.args...)
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.want, got)
	}
	for _, bad := range [][]any{{1, 2}, {[]string{"a"}}} {
		_, err := chdbtest.Bind(server, "SELECT ?", bad...)
		require.Error(t, err, "%v", bad)
	}
	_, err = chdbtest.Bind(server, "SELECT ?, ?", 1)
	require.Error(t, err)
}
