package egress

import (
	"net"
	"net/netip"
	"net/url"
	"testing"
)

// FuzzCheckURL: no URL panics the check, and a host that Go's own parser
// reads as a refused address is never accepted, however it is spelt.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "[::ffff:127.0.0.1]",
		"[fe80::1%25eth0]", "localhost.", "example.com", "8.8.8.8", "[64:ff9b::7f00:1]", "1.2.3.4.5"} {
		f.Add(s)
	}
	p := Config{}.Policy()
	f.Fuzz(func(t *testing.T, host string) {
		raw := "http://" + host + "/"
		err := p.CheckURL(raw)
		u, perr := url.Parse(raw)
		if perr != nil || err != nil {
			return
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); ip != nil {
			a, _ := netip.AddrFromSlice(ip)
			if Classify(a) != "" {
				t.Fatalf("%q accepted, but Go reads it as refused %s", raw, a)
			}
		}
		if a, err := netip.ParseAddr(h); err == nil && Classify(a) != "" {
			t.Fatalf("%q accepted, but it is refused address %s", raw, a)
		}
	})
}
