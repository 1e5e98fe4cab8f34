package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// CheckURL checks the host of an http(s) URL as written, before it is
// saved: a literal address that the policy refuses, in any spelling
// (IPv4 as inet_aton reads it: 2130706433, 0177.0.0.1, 0x7f.0.0.1, 127.1;
// a trailing dot; bracketed IPv6 with or without a zone; non-ASCII
// spellings that IDNA maps to these, as net/http does before dialing) and
// names of the local host (localhost, *.localhost) are refused with an error wrapping
// ErrRefused that says why. Other names pass: the dialer checks what they
// resolve to at connect time. An allow-listed exact ip:port (the URL's
// port, or 80/443 by scheme) passes. A URL that does not parse is an
// error too.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	host, err := dialedHost(u.Hostname())
	if err != nil {
		return &RefusedError{Reason: fmt.Sprintf("host %q: %v", u.Hostname(), err)}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	addr, isAddr, err := ParseHost(host)
	if err != nil {
		return &RefusedError{Reason: fmt.Sprintf("host %q: %v", host, err)}
	}
	if !isAddr {
		if isLocalName(host) {
			return &RefusedError{Reason: fmt.Sprintf("host %q names the local host", host)}
		}
		return nil
	}
	ap := netip.AddrPortFrom(addr, uint16(n))
	if p.allowListed(ap) {
		return nil
	}
	if why := Classify(addr); why != "" {
		shown := addr.WithZone("").String()
		if shown == host {
			return &RefusedError{Reason: fmt.Sprintf("host %s is %s", host, why)}
		}
		return &RefusedError{Reason: fmt.Sprintf("host %q is %s, %s", host, shown, why)}
	}
	return nil
}

// dialedHost returns host as net/http dials it: a host with non-ASCII
// characters is mapped to ASCII with the IDNA lookup profile, which turns
// fullwidth digits and letters into ASCII ones, ideographic and fullwidth
// full stops into dots and drops zero-width characters (so
// "１２７。０。０。１" is dialed as 127.0.0.1). A non-ASCII host that does
// not map is an error.
func dialedHost(host string) (string, error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			a, err := idna.Lookup.ToASCII(host)
			if err != nil {
				return "", errors.New("not a valid internationalized host name")
			}
			return a, nil
		}
	}
	return host, nil
}

// ParseHost reads a URL host (without brackets or port) the way resolvers
// and browsers may: an IPv6 literal with an optional zone, or an IPv4
// address in any inet_aton spelling (one to four parts, each decimal,
// octal with a leading 0 or hexadecimal with 0x; the last part fills the
// remaining bytes), with trailing dots ignored. It reports whether host is
// an address; a host that ends in a number but is not a valid IPv4
// address is an error (a resolver might read it in yet another way).
func ParseHost(host string) (netip.Addr, bool, error) {
	h := strings.TrimRight(strings.ToLower(host), ".")
	if h == "" {
		return netip.Addr{}, false, errors.New("empty host")
	}
	if strings.Contains(h, ":") {
		a, err := netip.ParseAddr(h)
		if err != nil {
			return netip.Addr{}, false, errors.New("not a valid IPv6 address")
		}
		return a, true, nil
	}
	parts := strings.Split(h, ".")
	if _, ok := parseNumber(parts[len(parts)-1]); !ok {
		return netip.Addr{}, false, nil // a name
	}
	a, ok := parseInetAton(parts)
	if !ok {
		return netip.Addr{}, false, errors.New("ends in a number but is not a valid IPv4 address")
	}
	return a, true, nil
}

func parseInetAton(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, s := range parts {
		n, ok := parseNumber(s)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		rest := 8 * (4 - i) // bits the last part fills
		if rest < 64 && n >= 1<<rest {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseNumber reads one inet_aton part: 0x hexadecimal (0x alone is 0),
// 0 octal, or decimal.
func parseNumber(s string) (uint64, bool) {
	base := 10
	switch {
	case s == "":
		return 0, false
	case strings.HasPrefix(s, "0x"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true
		}
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef"[:base], c) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		// Too many digits: still a number, never a valid part.
		return 1 << 40, true
	}
	return n, true
}

// isLocalName reports names that resolve to the local host by convention
// or by RFC 6761 (localhost and every name under it).
func isLocalName(host string) bool {
	h := strings.TrimRight(strings.ToLower(host), ".")
	switch h {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return true
	}
	return strings.HasSuffix(h, ".localhost")
}
