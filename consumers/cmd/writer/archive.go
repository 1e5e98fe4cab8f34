package main

// The archive of expiring events (consumers/archive), on when
// AUDITTRAIL_ARCHIVE_DIR is set: the retention job hands it each
// workspace's day before deleting it.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/query-api/store"
)

// archiverFromEnv returns the archiver the configuration asks for, nil
// when AUDITTRAIL_ARCHIVE_DIR is empty. The directory is created and must
// be writable; the manifest signing key must be set, and its verifier key
// among the manifest verifier keys (the archiver checks the manifests of
// the files already there with them).
func archiverFromEnv(env *config.Env, conn archive.Conn, logConn store.Conn, database string) (*archive.Archiver, error) {
	dir := config.ArchiveDir.Get(env)
	if dir == "" {
		return nil, nil
	}
	if !filepath.IsAbs(dir) {
		return nil, config.ArchiveDir.Invalid(dir)
	}
	key := config.ManifestSigningKey.Get(env)
	if key == "" {
		return nil, fmt.Errorf("%s is set, so %s is required: archive manifests are signed with it", config.ArchiveDir.Name, config.ManifestSigningKey.Name)
	}
	signer, err := note.NewSigner(key)
	if err != nil {
		return nil, config.ManifestSigningKey.Refused()
	}
	known, err := signerListed(signer, config.ManifestVerifierKeys.Get(env))
	if err != nil {
		return nil, err
	}
	if err := writable(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", config.ArchiveDir.Name, err)
	}
	return archive.New(dir, archive.NewClickHouseRows(conn, database), store.NewLog(logConn, database), signer, known, time.Now)
}

// signerListed returns the verifiers of keys, which must hold the
// signer's verifier key, or its archives would not verify.
func signerListed(s note.Signer, keys []string) (note.Verifiers, error) {
	var vs []note.Verifier
	listed := false
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a note verifier key (%v)", config.ManifestVerifierKeys.Name, k, err)
		}
		vs = append(vs, v)
		listed = listed || (v.Name() == s.Name() && v.KeyHash() == s.KeyHash())
	}
	if listed {
		return note.VerifierList(vs...), nil
	}
	return nil, fmt.Errorf("%s lacks the verifier key of %s (key %s+%08x): add it, or archives will not verify",
		config.ManifestVerifierKeys.Name, config.ManifestSigningKey.Name, s.Name(), s.KeyHash())
}

// writable creates dir (private to the writer's user) and checks a file
// can be written in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return err
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}
