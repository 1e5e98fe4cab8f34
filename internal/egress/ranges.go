package egress

import (
	"encoding/binary"
	"net/netip"
)

type addrRange struct {
	prefix netip.Prefix
	kind   string
}

func mustRanges(kinds ...string) []addrRange {
	out := make([]addrRange, 0, len(kinds)/2)
	for i := 0; i < len(kinds); i += 2 {
		out = append(out, addrRange{netip.MustParsePrefix(kinds[i]), kinds[i+1]})
	}
	return out
}

// refused4 are the IPv4 ranges no outbound call may reach, most specific
// first.
var refused4 = mustRanges(
	"255.255.255.255/32", "a broadcast address",
	"0.0.0.0/32", "an unspecified address",
	"0.0.0.0/8", `a "this network" address`,
	"10.0.0.0/8", "a private address",
	"100.64.0.0/10", "a shared (CGNAT) address",
	"127.0.0.0/8", "a loopback address",
	"169.254.0.0/16", "a link-local address",
	"172.16.0.0/12", "a private address",
	"192.0.0.0/24", "a reserved (IETF protocol) address",
	"192.168.0.0/16", "a private address",
	"198.18.0.0/15", "a reserved (benchmarking) address",
	"224.0.0.0/4", "a multicast address",
	"240.0.0.0/4", "a reserved address",
)

// refused6 are the IPv6 ranges refused whatever they embed.
var refused6 = mustRanges(
	"::/128", "an unspecified address",
	"::1/128", "a loopback address",
	"::/96", "an IPv4-compatible address (deprecated)",
	"64:ff9b:1::/48", "a local-use NAT64 address",
	"100::/64", "a reserved (discard) address",
	"fc00::/7", "a unique-local address",
	"fe80::/10", "a link-local address",
	"fec0::/10", "a site-local address",
	"ff00::/8", "a multicast address",
)

var (
	mapped     = netip.MustParsePrefix("::ffff:0:0/96")
	translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// Classify returns what kind of refused address a is ("a loopback
// address", "a private address", ...), or "" for a public address. IPv6
// forms that embed an IPv4 address (IPv4-mapped, IPv4-translated, NAT64,
// 6to4, Teredo server and client) are refused when the embedded address
// is. The allow-list is not consulted (see Policy.CheckAddr).
func Classify(a netip.Addr) string {
	if !a.IsValid() {
		return "not a valid address"
	}
	a = a.WithZone("")
	if a.Is4() {
		return classify4(a)
	}
	b := a.As16()
	switch {
	case mapped.Contains(a):
		return embedded("IPv4-mapped", b[12:16])
	case translated.Contains(a):
		return embedded("IPv4-translated", b[12:16])
	case nat64.Contains(a):
		return embedded("NAT64", b[12:16])
	case sixToFour.Contains(a):
		return embedded("6to4", b[2:6])
	case teredo.Contains(a):
		if why := embedded("Teredo", b[4:8]); why != "" {
			return why
		}
		var client [4]byte
		binary.BigEndian.PutUint32(client[:], ^binary.BigEndian.Uint32(b[12:16]))
		return embedded("Teredo", client[:])
	}
	for _, r := range refused6 {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	return ""
}

func classify4(a netip.Addr) string {
	for _, r := range refused4 {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	return ""
}

// embedded classifies the IPv4 address b embedded in an IPv6 form.
func embedded(form string, b []byte) string {
	v4 := netip.AddrFrom4([4]byte(b))
	if why := classify4(v4); why != "" {
		return "the " + form + " form of " + v4.String() + ", " + why
	}
	return ""
}
