package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/config"
)

func TestArchiverFromEnv(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "manifests.test")
	require.NoError(t, err)
	_, otherV, err := note.GenerateKey(rand.Reader, "manifests.test")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "archive")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"relative", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": "archive", "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey}, `AUDITTRAIL_ARCHIVE_DIR="archive"`},
		{"no key", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir}, "AUDITTRAIL_MANIFEST_SIGNING_KEY is required"},
		{"not a key", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir, "AUDITTRAIL_MANIFEST_SIGNING_KEY": "PRIVATE+KEY+x"}, "AUDITTRAIL_MANIFEST_SIGNING_KEY: want"},
		{"key not listed", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir, "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey,
			"AUDITTRAIL_MANIFEST_VERIFIER_KEYS": otherV}, "AUDITTRAIL_MANIFEST_VERIFIER_KEYS lacks the verifier key"},
		{"no verifier keys", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir, "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey}, "AUDITTRAIL_MANIFEST_VERIFIER_KEYS lacks the verifier key"},
		{"a bad verifier key", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir, "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey,
			"AUDITTRAIL_MANIFEST_VERIFIER_KEYS": vkey + ",nope"}, `AUDITTRAIL_MANIFEST_VERIFIER_KEYS: "nope"`},
		{"not writable", map[string]string{"AUDITTRAIL_ARCHIVE_DIR": "/proc/audittrail-archive", "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey,
			"AUDITTRAIL_MANIFEST_VERIFIER_KEYS": vkey}, "AUDITTRAIL_ARCHIVE_DIR: "},
	} {
		a, err := archiverFromEnv(config.FromMap(tc.env), nil, nil, "db")
		require.ErrorContains(t, err, tc.want, tc.name)
		require.Nil(t, a, tc.name)
		require.NotContains(t, err.Error(), skey, tc.name)
	}

	a, err := archiverFromEnv(config.FromMap(map[string]string{}), nil, nil, "db")
	require.NoError(t, err)
	require.Nil(t, a, "off without a directory")

	a, err = archiverFromEnv(config.FromMap(map[string]string{"AUDITTRAIL_ARCHIVE_DIR": dir, "AUDITTRAIL_MANIFEST_SIGNING_KEY": skey,
		"AUDITTRAIL_MANIFEST_VERIFIER_KEYS": otherV + "," + vkey}), nil, nil, "db")
	require.NoError(t, err)
	require.Equal(t, dir, a.Dir())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the write check leaves nothing behind")
}
