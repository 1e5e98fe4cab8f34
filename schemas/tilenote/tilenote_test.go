package tilenote

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func sample() Times {
	t := Times{Tile: Tile{Origin: "audittrail.example", Workspace: "ws_1", Index: 3, Hash: tlog.RecordHash([]byte("x"))}}
	for i := range t.Times {
		t.Times[i] = 1_700_000_000 + int64(i*7%256)
	}
	t.Times[10] = 0 // not authenticated
	return t
}

func TestNotesRoundTrip(t *testing.T) {
	times := sample()
	got, err := ParseTimes(times.Text())
	require.NoError(t, err)
	require.Equal(t, times, got)

	require.Zero(t, times.Newest().Newest, "a tile with an unknown time has no known newest")
	times.Times[10] = 1_600_000_000
	n := times.Newest()
	require.Equal(t, int64(1_700_000_000+255), n.Newest)
	gotN, err := ParseNewest(n.Text())
	require.NoError(t, err)
	require.Equal(t, n, gotN)
	require.True(t, strings.HasPrefix(n.Text(), "audittrail.example/ws_1/tile-newest\n3\n"), n.Text())
}

func TestNotesRefuseOtherTexts(t *testing.T) {
	known := sample()
	known.Times[10] = 1
	times, newest := sample().Text(), known.Newest().Text()
	for name, text := range map[string]string{
		"a checkpoint":      "audittrail.example/ws_1\n3\n" + strings.Split(newest, "\n")[2] + "\n",
		"the other kind":    strings.Replace(newest, "tile-newest", "tile-times", 1),
		"no workspace":      strings.Replace(newest, "audittrail.example/ws_1/", "audittrail.example/", 1),
		"a negative tile":   strings.Replace(newest, "\n3\n", "\n-3\n", 1),
		"a padded tile":     strings.Replace(newest, "\n3\n", "\n03\n", 1),
		"a short hash":      strings.Replace(newest, strings.Split(newest, "\n")[2], "AAAA", 1),
		"a negative time":   strings.Replace(newest, "\n1700000255\n", "\n-1\n", 1),
		"an extension line": newest + "more\n",
		"no final newline":  strings.TrimSuffix(newest, "\n"),
	} {
		_, err := ParseNewest(text)
		require.Error(t, err, name)
	}
	_, err := ParseTimes(strings.Replace(times, " 0 ", " 0 1 ", 1))
	require.Error(t, err, "257 times")
	_, err = ParseTimes(strings.Replace(times, " 0 ", " x ", 1))
	require.Error(t, err, "a time that is no number")
	_, err = ParseTimes(newest)
	require.Error(t, err, "a newest note is not a times note")
}

func FuzzParse(f *testing.F) {
	f.Add(sample().Text())
	known := sample()
	known.Times[10] = 1
	f.Add(known.Newest().Text())
	f.Fuzz(func(t *testing.T, text string) {
		if tm, err := ParseTimes(text); err == nil {
			require.Equal(t, text, tm.Text(), "a times note parses only from its own text")
		}
		if n, err := ParseNewest(text); err == nil {
			require.Equal(t, text, n.Text(), "a newest note parses only from its own text")
		}
	})
}
