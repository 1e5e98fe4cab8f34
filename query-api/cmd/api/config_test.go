package main

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

func TestManifestKeyIsNotTheCheckpointKey(t *testing.T) {
	gen := func(name string) (string, string) {
		skey, vkey, err := note.GenerateKey(rand.Reader, name)
		require.NoError(t, err)
		return skey, vkey
	}
	cs, cv := gen("audittrail.local")
	ms, mv := gen("manifests.local")
	c := apiConfig{LogKeys: []string{cv}, ManifestKeys: []string{mv}}
	require.NoError(t, logKeys(&c, ms))
	require.NotNil(t, c.Signer)
	for name, c := range map[string]struct {
		cfg apiConfig
		key string
	}{
		"the checkpoint key":            {apiConfig{LogKeys: []string{cv}, ManifestKeys: []string{mv, cv}}, cs},
		"a key of both kinds":           {apiConfig{LogKeys: []string{cv}, ManifestKeys: []string{cv}}, ms},
		"its verifier key not listed":   {apiConfig{LogKeys: []string{cv}}, ms},
		"not a key":                     {apiConfig{ManifestKeys: []string{mv}}, "PRIVATE+KEY+x"},
		"not a manifest verifier key":   {apiConfig{ManifestKeys: []string{"nope"}}, ms},
		"not a checkpoint verifier key": {apiConfig{LogKeys: []string{"nope"}}, ms},
	} {
		cfg := c.cfg
		require.Error(t, logKeys(&cfg, c.key), name)
		require.Nil(t, cfg.Signer, name)
	}
}
