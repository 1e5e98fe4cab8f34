package trackingplan

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateURL(t *testing.T) {
	for _, c := range []struct {
		url, msg string
	}{
		{"https://api.example.com/v1?x=1#frag", "fragment"},
		{"https://api.example.com/#", "fragment"},
		{"https://api.example.com:0/", "port"},
		{"https://api.example.com:65536/", "port"},
		{"https://api.example.com:99999999999/", "port"},
		{"https://api.example.com:/", "port"},
		{"https://api.example.com/a b", "spaces"},
		{"https://api.example.com/a\tb", "control"},
		{"https://api.example.com/?q=a b", "spaces"},
		{" https://api.example.com/", "spaces"},
		{"https://user:pw@api.example.com/", "credentials"},
		{"ftp://api.example.com/", "scheme"},
		{"https:api.example.com", "absolute"},
		{"https://", "no host"},
	} {
		t.Run(c.url, func(t *testing.T) {
			require.ErrorContains(t, ValidateURL(c.url), c.msg)
			var fe *FieldError
			require.ErrorAs(t, Forwarding{Target: Target{URL: c.url}}.Validate(), &fe)
			require.Equal(t, "target.url", fe.Field)
			require.ErrorAs(t, Alerts{WebhookURL: c.url}.Validate(), &fe)
			require.Equal(t, "webhook_url", fe.Field)
		})
	}
	for _, ok := range []string{"https://api.example.com", "http://api.example.com:8080/in?key=a%20b&x=1", "https://[2606:4700::1111]:443/p"} {
		require.NoError(t, ValidateURL(ok), ok)
	}
}

func TestBatchURLKeepsTheQueryString(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com":                  "https://api.example.com/v1/batch",
		"https://api.example.com/":                 "https://api.example.com/v1/batch",
		"https://api.example.com/in/":              "https://api.example.com/in/v1/batch",
		"https://api.example.com/in?token=abc&x=1": "https://api.example.com/in/v1/batch?token=abc&x=1",
		"https://api.example.com/?token=abc":       "https://api.example.com/v1/batch?token=abc",
		"http://127.0.0.1:18555?x=%2F":             "http://127.0.0.1:18555/v1/batch?x=%2F",
		"https://api.example.com/a%20b/":           "https://api.example.com/a%20b/v1/batch",
	} {
		got, err := Target{URL: in}.BatchURL()
		require.NoError(t, err)
		require.Equal(t, want, got, in)
	}
}
