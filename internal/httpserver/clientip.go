package httpserver

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/config"
)

// TrustedProxiesFromEnv reads config.TrustedProxies: comma-separated CIDRs
// (10.0.0.0/8, fd00::/8) or single addresses; empty (the default) trusts
// no proxy.
func TrustedProxiesFromEnv(e *config.Env) ([]netip.Prefix, error) {
	return ParseTrustedProxies(config.TrustedProxies.Get(e))
}

// ParseTrustedProxies parses CIDRs or single addresses (a /32 or /128).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		errs = append(errs, config.TrustedProxies.Errorf(s, "a CIDR such as 10.0.0.0/8 or an IP address"))
	}
	return out, errors.Join(errs...)
}

// IPExtractor returns the client address of a request: the socket's peer,
// unless that peer is one of trusted. Behind a trusted peer, X-Forwarded-For
// is read from the right, skipping trusted hops, and the first untrusted
// address is the client; without X-Forwarded-For, X-Real-IP is used. No
// address range is trusted by default (echo's own extractors trust
// loopback and private ranges unless told otherwise).
func IPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		n := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	realIP := echo.ExtractIPFromRealIPHeader(opts...)
	return func(r *http.Request) string {
		if strings.TrimSpace(r.Header.Get(echo.HeaderXForwardedFor)) != "" {
			return xff(r)
		}
		return realIP(r)
	}
}
