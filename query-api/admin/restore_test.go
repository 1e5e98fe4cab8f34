package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/query-api/admin"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const origin = "audittrail.test"

var day = time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)

type dayRows []migrations.Row

func (d dayRows) Day(_ context.Context, ws string, at time.Time, fn func(r *migrations.Row) error) error {
	for i := range d {
		r := d[i]
		if r.WorkspaceID == ws && !r.Timestamp.Before(at) && r.Timestamp.Before(at.Add(24*time.Hour)) {
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// archived writes an archive of n events of ws_1 on day into a fresh
// directory and returns it with the keys that verify it.
type archived struct {
	dir    string
	ck, mk logtest.Key
}

func newArchive(t *testing.T, n int) archived {
	t.Helper()
	ck, err := logtest.NewKey(origin)
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests." + origin)
	require.NoError(t, err)
	log := logtest.New(origin, "ws_1")
	var rows dayRows
	for i := range n {
		at := day.Add(time.Duration(i) * time.Minute)
		r := migrations.Row{WorkspaceID: "ws_1", Timestamp: at, TimestampNs: at.UnixNano(), ID: fmt.Sprintf("evt_%d", i),
			Event: "Source Created", Category: "Sources", ActorType: "user", ActorID: "usr_1", Changes: "{}",
			Properties: "{}", ReceivedAt: at, ReceivedAtNs: at.UnixNano()}
		log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
		rows = append(rows, r)
	}
	_, err = log.Sign(ck, day.Add(48*time.Hour))
	require.NoError(t, err)
	a := archived{dir: t.TempDir(), ck: ck, mk: mk}
	arch, err := archive.New(a.dir, rows, log, mk.Signer, known(t, mk.Verifier), nil)
	require.NoError(t, err)
	require.NoError(t, arch.Archive(context.Background(), "ws_1", day))
	return a
}

func (a archived) restorer(t *testing.T, manifestKey string) *admin.Restorer {
	t.Helper()
	cvs, err := verify.Verifiers([]string{a.ck.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{manifestKey})
	require.NoError(t, err)
	return admin.NewRestorer(a.dir, nil, "db", cvs, mvs, origin)
}

func TestLoadProvesEveryPartBeforeRestoring(t *testing.T) {
	a := newArchive(t, 4)
	got, err := a.restorer(t, a.mk.Verifier).Load("ws_1", day.Add(13*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 4, got.Rows)
	require.Equal(t, []string{filepath.Join(a.dir, "ws_1", "2026", "08", "01.ndjson.gz")}, got.Files)

	// Signed by another manifest key: refused.
	other, err := logtest.NewKey("manifests." + origin)
	require.NoError(t, err)
	_, err = a.restorer(t, other.Verifier).Load("ws_1", day)
	var nv *admin.NotVerifiedError
	require.ErrorAs(t, err, &nv)
	require.Contains(t, nv.Problems[0], "manifest refused")

	_, err = a.restorer(t, a.mk.Verifier).Load("ws_1", day.Add(24*time.Hour))
	require.ErrorIs(t, err, admin.ErrNoArchive)
	_, err = a.restorer(t, a.mk.Verifier).Load("ws_9", day)
	require.ErrorIs(t, err, admin.ErrNoArchive)
}

func TestLoadRefusesAFileMovedToAnotherWorkspaceOrDay(t *testing.T) {
	a := newArchive(t, 2)
	src := filepath.Join(a.dir, "ws_1", "2026", "08", "01.ndjson.gz")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	for _, dst := range []struct {
		ws  string
		day time.Time
	}{{"ws_2", day}, {"ws_1", day.AddDate(0, 0, 1)}} {
		path := filepath.Join(a.dir, dst.ws, dst.day.Format("2006/01"), dst.day.Format("02")+".ndjson.gz")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		require.NoError(t, os.WriteFile(path, b, 0o600))
		_, err := a.restorer(t, a.mk.Verifier).Load(dst.ws, dst.day)
		var nv *admin.NotVerifiedError
		require.ErrorAs(t, err, &nv, "%s %s", dst.ws, dst.day)
		require.Regexp(t, "not an archive of workspace "+dst.ws+"|is not of "+dst.day.Format(time.DateOnly), nv.Problems[0])
	}
}

func TestLoadRefusesAFileThatIsNotAnArchive(t *testing.T) {
	a := newArchive(t, 1)
	path := filepath.Join(a.dir, "ws_1", "2026", "08", "01.ndjson.gz")
	require.NoError(t, os.WriteFile(path, []byte{0x1f, 0x8b, 0, 1, 2}, 0o600))
	_, err := a.restorer(t, a.mk.Verifier).Load("ws_1", day)
	require.Error(t, err)
	require.False(t, errors.Is(err, admin.ErrNoArchive))
}

func TestRestoreRequestsAreValidated(t *testing.T) {
	a := newArchive(t, 2)
	s := newServer(t, a.restorer(t, a.mk.Verifier))
	const path = "/admin/v1/workspaces/ws_1/archive/restore"
	for _, tc := range []struct{ body, field string }{
		{`{"until": "2027-01-01", "reason": "x"}`, "day"},
		{`{"day": "2026-8-1", "until": "2027-01-01", "reason": "x"}`, "day"},
		{`{"day": "2026-12-08", "until": "2027-01-01", "reason": "x"}`, "day"},
		{`{"day": "../../etc", "until": "2027-01-01", "reason": "x"}`, "day"},
		{`{"day": "2026-08-01", "reason": "x"}`, "until"},
		{`{"day": "2026-08-01", "until": "2026-12-07", "reason": "x"}`, "until"},
		{`{"day": "2026-08-01", "until": "2036-12-07", "reason": "x"}`, "until"},
		{`{"day": "2026-08-01", "until": "2027-01-01"}`, "reason"},
		{`{"day": "2026-08-01", "until": "2027-01-01", "reason": "x", "path": "/etc/passwd"}`, "path"},
	} {
		rec := s.do(http.MethodPost, path, aliceToken, tc.body)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%s: %s", tc.body, rec.Body.String())
		require.Equal(t, tc.field, errorOf(t, rec).Error.Field, tc.body)
	}
	rec := s.do(http.MethodPost, path, aliceToken, `{"day": "2026-08-02", "until": "2027-01-01", "reason": "audit request 12"}`)
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Equal(t, "day", errorOf(t, rec).Error.Field)
	require.Empty(t, s.emitter.events)

	off := newServer(t, nil)
	rec = off.do(http.MethodPost, path, aliceToken, `{"day": "2026-08-01", "until": "2027-01-01", "reason": "audit request 12"}`)
	require.Equal(t, http.StatusConflict, rec.Code)
	require.Equal(t, "archive_not_configured", errorOf(t, rec).Error.Code)
}

func TestRestoreOfAnArchiveThatDoesNotVerifyRestoresNothing(t *testing.T) {
	a := newArchive(t, 2)
	other, err := logtest.NewKey("manifests." + origin)
	require.NoError(t, err)
	s := newServer(t, a.restorer(t, other.Verifier))
	rec := s.do(http.MethodPost, "/admin/v1/workspaces/ws_1/archive/restore", aliceToken,
		`{"day": "2026-08-01", "until": "2027-01-01", "reason": "audit request 12"}`)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	require.Equal(t, "archive_not_verified", errorOf(t, rec).Error.Code)
	require.Empty(t, s.emitter.events)
}

// known returns the verifiers of keys.
func known(t testing.TB, keys ...string) note.Verifiers {
	t.Helper()
	vs, err := verify.Verifiers(keys)
	require.NoError(t, err)
	return vs
}

func TestRestoreRefusesAPartTooLargeToProveInMemory(t *testing.T) {
	a := newArchive(t, 50)
	r := a.restorer(t, a.mk.Verifier)
	admin.SetMaxFile(r, 4096)
	s := newServer(t, r)
	rec := s.do(http.MethodPost, "/admin/v1/workspaces/ws_1/archive/restore", aliceToken,
		`{"day": "2026-08-01", "until": "2027-01-01", "reason": "audit request 12"}`)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	e := errorOf(t, rec).Error
	require.Equal(t, "archive_too_large", e.Code)
	require.Equal(t, "day", e.Field)
	require.Empty(t, s.emitter.events, "nothing recorded")
}
