// Package netguard decides which addresses Herald may connect to when the
// address came from a user: webhook endpoints, /test, and a joining
// node's Raft address. The check is made on the IP actually dialled,
// after DNS resolution, so a name that resolves to a public address when
// it is registered and to 127.0.0.1 when it is dialled (DNS rebinding)
// is still refused.
//
// The deny list is code.dny.dev/ssrf's (the IANA special-purpose
// registries: loopback, private, link-local, CGNAT, benchmarking,
// documentation, multicast, reserved and broadcast IPv4 ranges, and every
// IPv6 address outside global unicast or in a special-purpose part of it,
// which covers the IPv4-mapped and -compatible forms, NAT64, 6to4,
// Teredo, ULA and link-local). Herald adds its own listen addresses, and
// an allow list (--delivery-allow) that opens ranges before the deny
// list is consulted.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// ErrBlocked is the sentinel of every refused destination.
var ErrBlocked = errors.New("blocked_destination")

// ErrInvalidAllow is returned by ParseAllow for a malformed range.
var ErrInvalidAllow = errors.New("invalid allow range")

// BlockedError names a refused destination by what the user gave (a host
// name or a literal address), never by an address a resolver returned.
type BlockedError struct {
	Host    string
	Self    bool // the destination is one of Herald's own listen addresses
	Cluster bool // refused by the cluster guard
}

func (e *BlockedError) Error() string { return ErrBlocked.Error() + ": " + e.Reason() }

// Reason is the error's text without the leading "blocked_destination: ".
func (e *BlockedError) Reason() string {
	if e.Self {
		return fmt.Sprintf("%s is this node's own listen address", e.Host)
	}
	if e.Cluster {
		return fmt.Sprintf("%s is, or resolves to, an unspecified, link-local, multicast or reserved address, which no cluster member can have", e.Host)
	}
	return fmt.Sprintf("%s is, or resolves to, a loopback, private or other special-purpose address; allow its range with --delivery-allow", e.Host)
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

// DialError is a failed connection worded without the addresses it
// tried or the resolver it asked.
type DialError struct {
	Host string
	Op   string // "lookup" or "connect"
	Msg  string
	Err  error // the cause, for errors.Is (context errors)
}

func (e *DialError) Error() string { return e.Op + " " + e.Host + ": " + e.Msg }
func (e *DialError) Unwrap() error { return e.Err }

// Resolver looks up a host's addresses (*net.Resolver is one; tests use a
// fake so that no query and no packet leaves the machine).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a Guard.
type Config struct {
	// Allow lists ranges that are reachable although the deny list covers
	// them (an edge box's LAN receiver, 127.0.0.0/8 in development).
	Allow []netip.Prefix
	// Self lists Herald's own listen addresses (host:port); they are
	// refused even inside Allow. A host of 0.0.0.0 or :: refuses the port
	// on every loopback and unspecified address.
	Self []string
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds each connection attempt (default 10 s).
	DialTimeout time.Duration
}

// Guard checks and dials destinations. It is safe for concurrent use.
type Guard struct {
	allow    []netip.Prefix
	self     map[netip.AddrPort]bool
	anyPort  map[uint16]bool // ports bound on an unspecified address
	denied   func(netip.Addr) bool
	resolver Resolver
	dialer   net.Dialer
	cluster  bool
}

// New returns a Guard.
func New(cfg Config) (*Guard, error) {
	lib := ssrf.New(ssrf.WithAnyPort(), ssrf.WithNetworks("tcp4", "tcp6"))
	g := &Guard{
		allow:    cfg.Allow,
		self:     map[netip.AddrPort]bool{},
		anyPort:  map[uint16]bool{},
		denied:   func(ip netip.Addr) bool { return lib.SafeAddr(ip) != nil },
		resolver: cfg.Resolver,
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	g.dialer = net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
	for _, s := range cfg.Self {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("netguard: own address %q: %w", s, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("netguard: own address %q: bad port", s)
		}
		ip, err := netip.ParseAddr(host)
		if host == "" || (err == nil && ip.IsUnspecified()) {
			g.anyPort[uint16(p)] = true
			continue
		}
		if err != nil {
			continue // a name: its addresses are checked when dialled like any other
		}
		g.self[netip.AddrPortFrom(ip.Unmap(), uint16(p))] = true
	}
	return g, nil
}

// ParseAllow reads "CIDR[,CIDR…]"; a bare address is its own /32 or
// /128. Empty input is no range.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		q := f
		if len(q) > 64 {
			q = q[:64] + "…"
		}
		return nil, fmt.Errorf("%w: %q is not a CIDR range (e.g. 10.1.0.0/16) or an address", ErrInvalidAllow, q)
	}
	return out, nil
}

// Loopback is the allow list of development: 127.0.0.0/8 and ::1.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Allowed reports whether ip:port may be dialled.
func (g *Guard) Allowed(ip netip.Addr, port uint16) bool {
	return g.check(ip, port) == nil
}

// check returns nil, or errSelf or ErrBlocked.
func (g *Guard) check(ip netip.Addr, port uint16) error {
	ip = ip.Unmap().WithZone("")
	if g.self[netip.AddrPortFrom(ip, port)] {
		return errSelf
	}
	if g.anyPort[port] && (ip.IsLoopback() || ip.IsUnspecified()) {
		return errSelf
	}
	for _, p := range g.allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if g.denied(ip) {
		return ErrBlocked
	}
	return nil
}

// NewCluster returns the guard of cluster connections (a joining node's
// Raft address, and every dial to a member). Clusters live on loopback
// and private networks, so those are allowed; what is refused is what no
// Herald node can listen on or should be reached at: unspecified,
// multicast, broadcast and reserved addresses, link-local ones (which
// hold cloud metadata services at 169.254.169.254), and the
// special-purpose IPv6 forms that embed IPv4 (NAT64, 6to4, Teredo).
// Self is not used: a node may dial its own cluster port.
func NewCluster(cfg Config) (*Guard, error) {
	cfg.Self = nil
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	g.cluster = true
	g.denied = clusterDenied
	return g, nil
}

var clusterDeniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"), // reserved, and 255.255.255.255
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::/96"), // IPv4-compatible
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001::/32"), // Teredo
	netip.MustParsePrefix("2002::/16"), // 6to4
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

func clusterDenied(ip netip.Addr) bool {
	if ip.IsLoopback() {
		return false // ::1 lies inside ::/96
	}
	for _, p := range clusterDeniedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Guard) blocked(host string, err error) *BlockedError {
	return &BlockedError{Host: host, Self: err == errSelf, Cluster: g.cluster}
}

var errSelf = fmt.Errorf("%w: own address", ErrBlocked)

// Control is a net.Dialer Control function: it refuses, before the
// connection is attempted, an address the guard does not allow.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", ErrBlocked, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address", ErrBlocked)
	}
	if err := g.check(ap.Addr(), ap.Port()); err != nil {
		return g.blocked(ap.Addr().String(), err)
	}
	return nil
}

// CheckHost resolves host (a name or a literal address) and reports a
// *BlockedError if any of its addresses is refused. A name that does not
// resolve is not refused here: it is checked again whenever it is
// dialled.
func (g *Guard) CheckHost(ctx context.Context, host string, port uint16) error {
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if err := g.check(ip, port); err != nil {
			return g.blocked(host, err)
		}
	}
	return nil
}

func (g *Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip, err := netip.ParseAddr(h); err == nil {
		return []netip.Addr{ip}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.resolver.LookupNetIP(ctx, "ip", h)
	if err == nil && len(ips) == 0 {
		err = errors.New("no address")
	}
	return ips, err
}

// DialContext resolves addr's host with the guard's resolver and dials
// its allowed addresses in turn, each through Control. Errors name the
// host as given, never a resolved address or the resolver.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &DialError{Host: addr, Op: "connect", Msg: "not host:port"}
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, &DialError{Host: addr, Op: "connect", Msg: "bad port"}
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil, lookupError(host, err)
	}
	var last error
	for _, ip := range ips {
		if err := g.check(ip, uint16(port)); err != nil {
			if last == nil {
				last = g.blocked(host, err)
			}
			continue
		}
		c, err := g.dialer.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		last = connectError(host, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

func lookupError(host string, err error) error {
	var de *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &DialError{Host: host, Op: "lookup", Msg: "timeout", Err: err}
	case errors.As(err, &de) && de.IsNotFound:
		return &DialError{Host: host, Op: "lookup", Msg: "no such host"}
	case errors.As(err, &de) && de.IsTimeout:
		return &DialError{Host: host, Op: "lookup", Msg: "timeout"}
	}
	return &DialError{Host: host, Op: "lookup", Msg: "failed"}
}

func connectError(host string, err error) error {
	var be *BlockedError
	if errors.As(err, &be) {
		be.Host = host
		return be
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &DialError{Host: host, Op: "connect", Msg: "timeout", Err: err}
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return &DialError{Host: host, Op: "connect", Msg: se.Err.Error()}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &DialError{Host: host, Op: "connect", Msg: "timeout"}
	}
	return &DialError{Host: host, Op: "connect", Msg: "failed"}
}
