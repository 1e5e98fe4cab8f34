package archivefile_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/archivefile"
)

func TestPartsListsTheDaysFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	month := filepath.Join(dir, "ws_1", "2025", "01")
	require.NoError(t, os.MkdirAll(month, 0o700))
	for _, name := range []string{"02.ndjson.gz", "02.10.ndjson.gz", "02.2.ndjson.gz", "02.unsealed.ndjson.gz",
		"03.ndjson.gz", "02.1.ndjson.gz", "02.0.ndjson.gz", ".02.ndjson.gz.tmp-1", "02.ndjson", "x02.ndjson.gz"} {
		require.NoError(t, os.WriteFile(filepath.Join(month, name), nil, 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(month, "02.3.ndjson.gz"), 0o700)) // not a file
	parts, err := archivefile.Parts(dir, "ws_1", day)
	require.NoError(t, err)
	require.Equal(t, []archivefile.Part{
		{Path: filepath.Join(month, "02.ndjson.gz"), Number: 1},
		{Path: filepath.Join(month, "02.2.ndjson.gz"), Number: 2},
		{Path: filepath.Join(month, "02.10.ndjson.gz"), Number: 10},
		{Path: filepath.Join(month, "02.unsealed.ndjson.gz"), Number: 1, Unsealed: true},
	}, parts)

	none, err := archivefile.Parts(dir, "ws_2", day)
	require.NoError(t, err)
	require.Empty(t, none)

	p, err := archivefile.PartPath(dir, "ws_1", day, archivefile.Part{Number: 3, Unsealed: true})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(month, "02.unsealed.3.ndjson.gz"), p)
}

func TestWorkspaceIDsStayInsideTheDirectory(t *testing.T) {
	for _, ws := range []string{"", ".", "..", "../a", "a/../..", "a/b", `..\a`, "/abs", "-x", "a b", "a\n"} {
		_, err := archivefile.DayDir("/archive", ws, time.Now())
		require.ErrorIs(t, err, archivefile.ErrWorkspace, "%q", ws)
	}
	d, err := archivefile.DayDir("/archive", "org:ws.1_a-b", time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, "/archive/org:ws.1_a-b/2024/12", d)
}
