package credential_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/credential"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		token, id, secret string
		ok                bool
	}{
		{"pc_abcdefghijkl.s3cret", "pc_abcdefghijkl", "s3cret", true},
		{"pc_x.a-b_c", "pc_x", "a-b_c", true},
		{"pc_.secret", "", "", false},
		{"pc_abc.", "", "", false},
		{"pc_abc", "", "", false},
		{"xx_abc.secret", "", "", false},
		{"pc_abc.sec.ret", "", "", false},
		{"legacy-token-0123456789", "", "", false},
		{"", "", "", false},
	} {
		id, secret, err := credential.ParseToken(tc.token)
		if !tc.ok {
			require.ErrorIs(t, err, credential.ErrMalformedToken, tc.token)
			continue
		}
		require.NoError(t, err, tc.token)
		require.Equal(t, tc.id, id)
		require.Equal(t, tc.secret, secret)
	}
}

func TestNewIDAndSecretRoundTripAsAToken(t *testing.T) {
	id, secret := credential.NewID(), credential.NewSecret()
	require.Regexp(t, `^pc_[a-z2-7]{12}$`, id)
	require.Len(t, secret, 43, "32 bytes, base64url without padding")
	gotID, gotSecret, err := credential.ParseToken(credential.Token(id, secret))
	require.NoError(t, err)
	require.Equal(t, id, gotID)
	require.Equal(t, secret, gotSecret)
	require.NotEqual(t, id, credential.NewID())
	require.NotEqual(t, secret, credential.NewSecret())
}

func TestLegacyIDIsDerivedFromTheToken(t *testing.T) {
	id := credential.LegacyID("test-ingest-token-0123456789")
	require.Regexp(t, `^legacy-[0-9a-f]{12}$`, id)
	require.Equal(t, id, credential.LegacyID("test-ingest-token-0123456789"))
	require.NotEqual(t, id, credential.LegacyID("test-ingest-token-0123456780"))
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		scopes      credential.Scopes
		workspace   string
		category    string
		wsOK, catOK bool
	}{
		{"all", credential.AllScopes(), "ws_1", "Warehouses", true, true},
		{"all never covers the platform trail", credential.AllScopes(), credential.PlatformWorkspace, "Audit Trail", false, true},
		{"list hit", credential.Scopes{Workspaces: []string{"ws_1", "ws_2"}, Categories: []string{"Warehouses"}}, "ws_2", "Warehouses", true, true},
		{"list miss", credential.Scopes{Workspaces: []string{"ws_1", "ws_2"}, Categories: []string{"Warehouses"}}, "ws_3", "Sources", false, false},
		{"list is exact", credential.Scopes{Workspaces: []string{"ws_1"}, Categories: []string{"Warehouses"}}, "ws_10", "Warehouse", false, false},
		{"prefix hit", credential.Scopes{Workspaces: []string{"ws_eu_*"}, Categories: []string{credential.All}}, "ws_eu_7", "Custom", true, true},
		{"prefix miss", credential.Scopes{Workspaces: []string{"ws_eu_*"}, Categories: []string{credential.All}}, "ws_us_7", "Sources", false, true},
		{"mixed list and prefix", credential.Scopes{Workspaces: []string{"ws_1", "ws_eu_*"}, Categories: []string{"Sources", "Custom"}}, "ws_1", "Custom", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.scopes.Validate())
			require.Equal(t, tc.wsOK, tc.scopes.AllowsWorkspace(tc.workspace))
			require.Equal(t, tc.catOK, tc.scopes.AllowsCategory(tc.category))
		})
	}
}

func TestScopesValidate(t *testing.T) {
	for _, tc := range []struct {
		scopes credential.Scopes
		want   string
	}{
		{credential.Scopes{Categories: []string{"*"}}, "workspaces: empty"},
		{credential.Scopes{Workspaces: []string{"*"}}, "categories: empty"},
		{credential.Scopes{Workspaces: []string{"*", "ws_1"}, Categories: []string{"*"}}, `workspaces: "*" stands alone`},
		{credential.Scopes{Workspaces: []string{"ws_*_eu"}, Categories: []string{"*"}}, "trailing *"},
		{credential.Scopes{Workspaces: []string{"ws_1"}, Categories: []string{"Warehouse"}}, `"Warehouse" is not a category`},
	} {
		require.ErrorContains(t, tc.scopes.Validate(), tc.want)
	}
	require.Equal(t, []string{"ws_1", "ws_eu_*"}, credential.ParseList(" ws_1, ,ws_eu_* "))
}

func TestRotationKeepsBothSecretsValidOnlyDuringTheGrace(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := credential.Record{ID: "pc_abcdefghijkl", Name: "warehouse", Scopes: credential.AllScopes(),
		SecretSHA256: credential.Hash("old"), CreatedAt: created}
	require.NoError(t, r.Validate())
	require.True(t, r.Verify("old", created))
	require.False(t, r.Verify("new", created))

	rotated := created.Add(time.Hour)
	r.Rotate("new", rotated, 24*time.Hour)
	require.NoError(t, r.Validate())
	for _, tc := range []struct {
		at           time.Time
		oldOK, newOK bool
	}{
		{rotated, true, true},
		{rotated.Add(24*time.Hour - time.Nanosecond), true, true},
		{rotated.Add(24 * time.Hour), false, true},
		{rotated.Add(48 * time.Hour), false, true},
	} {
		require.Equal(t, tc.oldOK, r.Verify("old", tc.at), "old secret at %s", tc.at)
		require.Equal(t, tc.newOK, r.Verify("new", tc.at), "new secret at %s", tc.at)
	}
	require.False(t, r.Verify("", rotated))

	r.Rotate("newer", rotated.Add(time.Minute), 0)
	require.False(t, r.Verify("new", rotated.Add(time.Minute)), "no grace: the previous secret stops at once")
	require.True(t, r.Verify("newer", rotated.Add(time.Minute)))
}

func TestRevokedRecordOpensToNoSecret(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := credential.Record{ID: "pc_abcdefghijkl", Name: "n", Scopes: credential.AllScopes(), SecretSHA256: credential.Hash("s"), CreatedAt: at}
	r.Rotate("t", at, time.Hour)
	r.RevokedAt = &at
	require.False(t, r.Verify("s", at))
	require.False(t, r.Verify("t", at))
}

func TestRecordValidate(t *testing.T) {
	good := credential.Record{ID: "pc_abcdefghijkl", Name: "n", Scopes: credential.AllScopes(), SecretSHA256: credential.Hash("s")}
	require.NoError(t, good.Validate())
	bad := good
	bad.ID, bad.Name, bad.SecretSHA256 = "abc", " ", "x"
	err := bad.Validate()
	for _, want := range []string{`id "abc"`, "name is empty", "secret_sha256"} {
		require.ErrorContains(t, err, want)
	}
}
