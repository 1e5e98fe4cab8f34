package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
)

func TestClassifyRefusesEveryNonPublicRange(t *testing.T) {
	refused := []string{
		// IPv4
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254",
		"127.0.0.1", "127.255.0.9", "169.254.169.254", "172.16.0.1", "172.31.255.255",
		"192.0.0.170", "192.168.1.1", "198.18.0.1", "224.0.0.1", "239.255.255.250",
		"240.0.0.1", "255.255.255.255",
		// IPv6
		"::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "100::1",
		// IPv4 embedded in IPv6
		"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"::127.0.0.1", "::8.8.8.8", // IPv4-compatible, deprecated
		"::ffff:0:127.0.0.1",                       // IPv4-translated
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", // NAT64 of 127.0.0.1, 169.254.169.254
		"64:ff9b:1::1", "64:ff9b:1:2:3::4", // local-use NAT64
		"2002:7f00:1::", "2002:c0a8:101::1", "2002:a9fe:a9fe::", // 6to4 of 127.0.0.1, 192.168.1.1, 169.254.169.254
		"2001:0:7f00:1::",              // Teredo server 127.0.0.1
		"2001:0:808:808:0:0:80ff:fffe", // Teredo client ^0x80fffffe = 127.0.0.1
	}
	for _, s := range refused {
		t.Run(s, func(t *testing.T) {
			a, err := netip.ParseAddr(s)
			require.NoError(t, err)
			require.NotEmpty(t, Classify(a), "%s must be refused", s)
			require.ErrorIs(t, (&Policy{}).CheckAddr(netip.AddrPortFrom(a, 80)), ErrRefused)
		})
	}
	public := []string{"8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "192.169.0.1", "203.0.113.9",
		"2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:0:808:808::f7f7:f7f7"}
	for _, s := range public {
		t.Run(s, func(t *testing.T) {
			a := netip.MustParseAddr(s)
			require.Empty(t, Classify(a), "%s is public", s)
			require.NoError(t, (*Policy)(nil).CheckAddr(netip.AddrPortFrom(a, 443)))
		})
	}
}

func TestCheckURLRefusesLiteralHostsInEverySpelling(t *testing.T) {
	refused := []string{
		"http://127.0.0.1:8123/?query_id=x", "http://127.0.0.1./", "http://2130706433/", "http://0177.0.0.1/",
		"http://0x7f.0.0.1/", "http://0x7F000001/", "http://017700000001/", "http://127.1/", "http://127.0.1/",
		"http://0x7f.1/", "http://0177.0x0.1/", "http://0/", "http://0.0.0.0:8080/",
		"http://169.254.169.254/latest/meta-data/", "http://0xa9.0xfe.0xa9.0xfe/", "http://2852039166/",
		"http://10.1.2.3/", "http://012.1/", "http://172.16.0.1/", "http://192.168.0.1/", "http://0xc0a80001/",
		"http://100.64.0.1/", "http://224.0.0.1/", "http://255.255.255.255/", "http://240.0.0.1/",
		"http://[::1]/", "http://[::]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/",
		"http://[::ffff:7f00:1]:8123/", "http://[fe80::1%25eth0]/", "http://[fc00::1]/", "http://[fd00::1]/",
		"http://[64:ff9b::7f00:1]/", "http://[64:ff9b::169.254.169.254]/", "http://[2002:7f00:1::]/",
		"http://[::127.0.0.1]/", "http://[ff02::1]/", "http://[2001:0:7f00:1::]/",
		"http://localhost/", "http://LOCALHOST:8123/", "http://localhost./", "http://api.localhost/",
		"http://a.b.localhost./", "http://localhost.localdomain/", "http://ip6-localhost/",
		"http://1.2.3.256/", "http://999999999999/", "http://1.2.3.4.5/", "http://foo.0x7f/",
		// Non-ASCII hosts that net/http maps to ASCII (IDNA) before dialing:
		// fullwidth digits and letters, ideographic and fullwidth dots,
		// circled letters, percent-encoded fullwidth digits, zero-width
		// characters that the mapping drops.
		"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "http://127\u30020\u30020\u30021/",
		"http://127\uff0e0\uff0e0\uff0e1:8123/", "http://169\uff61254\uff61169\uff61254/",
		"http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/",
		"http://localhost%E3%80%82/", "http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1/", "http://127.0.0.1\u200b/",
		"http://\uff10\uff58\uff17\uff46.1/", "http://api.\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",
	}
	p := Config{}.Policy()
	for _, u := range refused {
		t.Run(u, func(t *testing.T) {
			err := p.CheckURL(u)
			require.ErrorIs(t, err, ErrRefused, u)
			require.Contains(t, err.Error(), "refused by policy")
		})
	}
	ok := []string{"https://api.example.com/v1?x=1", "http://8.8.8.8/", "http://134744072/", // 8.8.8.8
		"https://[2606:4700::1111]/", "http://example.com./", "http://10.example.com/", "http://localhost.example.com/",
		"https://b\u00fccher.example/", "https://xn--bcher-kva.example/"}
	for _, u := range ok {
		t.Run(u, func(t *testing.T) { require.NoError(t, p.CheckURL(u)) })
	}
	require.ErrorContains(t, p.CheckURL("http://127.0.0.1:0/"), "port")
}

func TestCheckURLAcceptsOnlyTheAllowListedPort(t *testing.T) {
	p := Config{AllowedTargets: []string{"127.0.0.1:18555", "10.9.0.0/16", "[fd00::7]:443"}}.Policy()
	require.NoError(t, p.CheckURL("http://127.0.0.1:18555/path?q=1"))
	require.NoError(t, p.CheckURL("http://2130706433:18555/"), "another spelling of the allowed ip:port")
	require.NoError(t, p.CheckURL("http://[::ffff:127.0.0.1]:18555/"))
	require.NoError(t, p.CheckURL("http://10.9.200.1:1234/"), "a CIDR allows every port")
	require.NoError(t, p.CheckURL("https://[fd00::7]/"))
	require.ErrorIs(t, p.CheckURL("http://127.0.0.1:18556/"), ErrRefused, "another port of the same ip")
	require.ErrorIs(t, p.CheckURL("http://127.0.0.1/"), ErrRefused, "port 80 is not 18555")
	require.ErrorIs(t, p.CheckURL("http://10.10.0.1:1234/"), ErrRefused)
	require.ErrorIs(t, p.CheckURL("http://localhost:18555/"), ErrRefused, "names are not allow-listed, addresses are")
}

func TestConfigFromEnvAndValidate(t *testing.T) {
	c := FromEnv(config.FromMap(map[string]string{}))
	require.Empty(t, c.AllowedTargets, "nothing non-public is allowed by default")
	require.NoError(t, c.Validate())

	c = FromEnv(config.FromMap(map[string]string{config.ForwardAllowedTargets.Name: " 127.0.0.1:18555, 10.0.0.0/8 ,[::1]:9000"}))
	require.Equal(t, []string{"127.0.0.1:18555", "10.0.0.0/8", "[::1]:9000"}, c.AllowedTargets)
	require.NoError(t, c.Validate())

	for _, bad := range []string{"127.0.0.1", "localhost:80", "10.0.0.0/33", "127.0.0.1:0", "[fe80::1%eth0]:80", "http://127.0.0.1:1"} {
		err := Config{AllowedTargets: []string{bad}}.Validate()
		require.ErrorContains(t, err, config.ForwardAllowedTargets.Name, bad)
		require.ErrorContains(t, err, bad)
	}
}

// counting is a local listener that counts the connections it accepts
// and answers every request 200.
type counting struct {
	srv      *httptest.Server
	accepted atomic.Int64
	requests atomic.Int64
	port     string
}

func newCounting(t *testing.T, h http.HandlerFunc) *counting {
	c := &counting{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.accepted.Add(1)
		}
	}
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	_, c.port, _ = net.SplitHostPort(c.srv.Listener.Addr().String())
	return c
}

func get(t *testing.T, cl *http.Client, url string, hdr ...string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestDialerRefusesAtConnectTime(t *testing.T) {
	c := newCounting(t, nil)
	cl := Config{}.Policy().Client(ClientOptions{Timeout: 5 * time.Second})
	// None of these is checked literally here: the dialer sees the
	// resolved address.
	hosts := []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0.0.0.0", "[::1]"}
	for _, h := range hosts {
		t.Run(h, func(t *testing.T) {
			_, err := get(t, cl, "http://"+h+":"+c.port+"/")
			require.Error(t, err)
			require.ErrorIs(t, err, ErrRefused)
			require.NotContains(t, strings.TrimPrefix(errors.Unwrap(err).Error(), "dial tcp"), "connection refused")
		})
	}
	require.Zero(t, c.accepted.Load(), "no connection reached the listener")
	require.Zero(t, c.requests.Load())
}

func TestAllowListIsExactIPAndPort(t *testing.T) {
	allowed := newCounting(t, nil)
	other := newCounting(t, nil)
	cl := Config{AllowedTargets: []string{"127.0.0.1:" + allowed.port}}.Policy().Client(ClientOptions{})
	resp, err := get(t, cl, "http://127.0.0.1:"+allowed.port+"/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 1, allowed.requests.Load())

	_, err = get(t, cl, "http://127.0.0.1:"+other.port+"/")
	require.ErrorIs(t, err, ErrRefused, "the same ip on another port is refused")
	require.Zero(t, other.accepted.Load())

	// A CIDR entry allows every port of its addresses.
	cl = Config{AllowedTargets: []string{"127.0.0.0/8"}}.Policy().Client(ClientOptions{})
	_, err = get(t, cl, "http://127.0.0.1:"+other.port+"/")
	require.NoError(t, err)
	require.EqualValues(t, 1, other.requests.Load())
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	second := newCounting(t, nil)
	var auth atomic.Value
	first := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		http.Redirect(w, r, "http://127.0.0.1:"+second.port+"/stolen", http.StatusFound)
	})
	cl := Config{AllowedTargets: []string{"127.0.0.1:" + first.port, "127.0.0.1:" + second.port}}.Policy().Client(ClientOptions{})
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			resp, err := get(t, cl, "http://127.0.0.1:"+first.port+fmt.Sprintf("/?code=%d", code), "Authorization", "Basic c2VjcmV0Og==")
			require.NoError(t, err)
			require.Equal(t, http.StatusFound, resp.StatusCode, "the 3xx is the answer")
		})
	}
	require.Equal(t, "Basic c2VjcmV0Og==", auth.Load())
	require.Zero(t, second.accepted.Load(), "the redirect target was never contacted")
}

func TestEnvironmentProxyIsIgnored(t *testing.T) {
	proxy := newCounting(t, nil)
	target := newCounting(t, nil)
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:"+proxy.port)
	t.Setenv("http_proxy", "http://127.0.0.1:"+proxy.port)
	cl := Config{AllowedTargets: []string{"127.0.0.1:" + target.port, "127.0.0.1:" + proxy.port}}.Policy().Client(ClientOptions{})
	_, err := get(t, cl, "http://127.0.0.1:"+target.port+"/")
	require.NoError(t, err)
	require.EqualValues(t, 1, target.requests.Load())
	require.Zero(t, proxy.accepted.Load())
}
