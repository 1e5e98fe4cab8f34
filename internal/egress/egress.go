// Package egress is the one outbound HTTP client for user-supplied URLs.
//
// Those are a workspace's forwarding target and alert webhook, and the API's
// test call. It keeps a workspace owner from turning the product against the
// platform (server-side request forgery):
//
//   - The dialer checks the address it is about to connect to, after name
//     resolution (net.Dialer.Control), so a DNS name that resolves to a
//     refused address, or changes to one later, is refused too.
//   - Environment proxies are ignored (Transport.Proxy is nil): nothing
//     relays a request around the check.
//   - Redirects are never followed: a 3xx is the answer, not a hop.
//   - CheckURL refuses literal hosts of the refused kinds (IPv4 in every
//     inet_aton spelling, IPv6 with or without a zone, localhost names)
//     before a URL is saved.
//
// Refused are loopback, private (RFC 1918), link-local, unique-local,
// CGNAT, unspecified, "this network", multicast, broadcast and reserved
// addresses, and the IPv6 forms that embed IPv4 addresses (IPv4-mapped,
// IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo) when the embedded
// address is refused. The only exception is the operator's allow-list,
// AUDITTRAIL_FORWARD_ALLOWED_TARGETS: exact ip:port entries and CIDRs.
//
// A Policy and the clients it builds are safe for concurrent use.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/internal/config"
)

// ErrRefused is returned (wrapped) for a connection or URL the policy
// refuses. Its text, "refused by policy", is what callers may show.
var ErrRefused = errors.New("refused by policy")

// RefusedError says why a URL's host is refused; it wraps ErrRefused.
type RefusedError struct {
	// Reason is a short operator-readable explanation, such as
	// "127.0.0.1 is a loopback address".
	Reason string
}

func (e *RefusedError) Error() string { return ErrRefused.Error() + ": " + e.Reason }

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Config is the outbound policy's configuration.
type Config struct {
	// AllowedTargets are the non-public targets the operator allows:
	// exact "ip:port" entries ("127.0.0.1:18555", "[fd00::1]:443") and
	// CIDRs ("10.1.2.0/24", every port). Empty by default.
	AllowedTargets []string
}

// Defaults returns the default configuration: nothing non-public allowed.
func Defaults() Config { return Config{} }

// FromEnv reads config.ForwardAllowedTargets (comma-separated).
func FromEnv(e *config.Env) Config {
	c := Defaults()
	c.AllowedTargets = config.ForwardAllowedTargets.Get(e)
	return c
}

// Validate reports allow-list entries that are neither an exact ip:port
// nor a CIDR.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.AllowedTargets {
		if _, _, err := parseEntry(s); err != nil {
			errs = append(errs, fmt.Errorf("%s entry %q: %v; want %s", config.ForwardAllowedTargets.Name, s, err, config.ForwardAllowedTargets.Accepts))
		}
	}
	return errors.Join(errs...)
}

func parseEntry(s string) (netip.AddrPort, netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.AddrPort{}, netip.Prefix{}, errors.New("not a CIDR")
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return netip.AddrPort{}, p.Masked(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, netip.Prefix{}, errors.New("not an ip:port")
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, netip.Prefix{}, errors.New("port 0")
	}
	if ap.Addr().Zone() != "" {
		return netip.AddrPort{}, netip.Prefix{}, errors.New("zones are not supported")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), netip.Prefix{}, nil
}

// Policy decides which addresses outbound requests may reach. The zero
// value and a nil *Policy allow public addresses only.
type Policy struct {
	exact    map[netip.AddrPort]bool
	prefixes []netip.Prefix
}

// Policy returns the policy of c. Entries that Validate reports are
// ignored (they allow nothing).
func (c Config) Policy() *Policy {
	p := &Policy{exact: map[netip.AddrPort]bool{}}
	for _, s := range c.AllowedTargets {
		ap, pre, err := parseEntry(s)
		switch {
		case err != nil:
		case pre.IsValid():
			p.prefixes = append(p.prefixes, pre)
		default:
			p.exact[ap] = true
		}
	}
	return p
}

// allowListed reports whether the operator allowed ap.
func (p *Policy) allowListed(ap netip.AddrPort) bool {
	if p == nil {
		return false
	}
	a := ap.Addr().WithZone("").Unmap()
	if p.exact[netip.AddrPortFrom(a, ap.Port())] {
		return true
	}
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// CheckAddr returns nil when a connection to ap is allowed: a public
// address, or one the allow-list names. Otherwise the error wraps
// ErrRefused.
func (p *Policy) CheckAddr(ap netip.AddrPort) error {
	if p.allowListed(ap) {
		return nil
	}
	if why := Classify(ap.Addr()); why != "" {
		return &RefusedError{Reason: fmt.Sprintf("%s is %s", ap.Addr().WithZone(""), why)}
	}
	return nil
}

// control is the dialer's Control hook: it runs after name resolution,
// with the address about to be connected.
func (p *Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %q: %w", network, address, ErrRefused)
	}
	if err := p.CheckAddr(ap); err != nil {
		// The caller sees only ErrRefused; the address stays out of
		// messages shown to workspace owners.
		return ErrRefused
	}
	return nil
}

// ClientOptions tune a client.
type ClientOptions struct {
	// Timeout bounds a whole request (0: none; use a context deadline).
	Timeout time.Duration
	// MaxIdleConns and MaxIdleConnsPerHost bound the idle pool (0: Go's
	// defaults of 100 and 2).
	MaxIdleConns, MaxIdleConnsPerHost int
}

// Client returns an HTTP client whose every connection passes CheckAddr
// at connect time, that ignores proxy settings and never follows a
// redirect (the 3xx response is returned as is). A refused connection
// fails with an error wrapping ErrRefused.
func (p *Policy) Client(o ClientOptions) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if o.MaxIdleConns > 0 {
		tr.MaxIdleConns = o.MaxIdleConns
	}
	return &http.Client{
		Timeout:   o.Timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
