package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every address below is only checked, never dialled: these tests open
// connections to 127.0.0.1 only.

func TestDefaultDenyList(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	denied := []string{
		"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::127.0.0.1",
		"0.0.0.0", "::", "0.1.2.3",
		"10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
		"169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1",
		"100.64.0.1", "198.18.0.1", "198.19.255.1",
		"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1",
		"224.0.0.1", "239.1.1.1", "255.255.255.255", "240.0.0.1", "ff02::1",
		"::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a00:1", // NAT64 of 127.0.0.1, 10.0.0.1
		"2002:7f00:1::1", "2002:a00:1::1", // 6to4 of 127.0.0.1, 10.0.0.1
		"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo of 127.0.0.1
	}
	for _, s := range denied {
		if g.Allowed(netip.MustParseAddr(s), 443) {
			t.Errorf("%s allowed by default", s)
		}
	}
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"} {
		if !g.Allowed(netip.MustParseAddr(s), 443) {
			t.Errorf("public %s refused", s)
		}
	}
}

func TestAllowOpensRangesButNotSelf(t *testing.T) {
	allow, err := ParseAllow("10.1.0.0/16, 127.0.0.0/8,::1, 192.168.7.7")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Allow: allow, Self: []string{"127.0.0.1:8080", "0.0.0.0:9090"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"10.1.2.3:80": true, "10.2.0.1:80": false, "127.0.0.1:3000": true, "[::1]:3000": true,
		"[::ffff:127.0.0.1]:3000": true, "192.168.7.7:80": true, "192.168.7.8:80": false,
		"127.0.0.1:8080": false, "[::ffff:127.0.0.1]:8080": false, // its own API
		"127.0.0.1:9090": false, "127.0.0.2:9090": false, "[::1]:9090": false, "0.0.0.0:9090": false,
		"169.254.169.254:80": false,
	}
	for s, want := range cases {
		ap := netip.MustParseAddrPort(s)
		if got := g.Allowed(ap.Addr(), ap.Port()); got != want {
			t.Errorf("%s: allowed %v, want %v", s, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope", strings.Repeat("x", 5000)} {
		_, err := ParseAllow(bad)
		if !errors.Is(err, ErrInvalidAllow) {
			t.Errorf("ParseAllow(%.20q) = %v", bad, err)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("error quotes the whole input: %d bytes", len(err.Error()))
		}
	}
}

func TestClusterGuard(t *testing.T) {
	g, err := NewCluster(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"127.0.0.1": true, "10.0.0.5": true, "192.168.1.2": true, "::1": true, "fd00::5": true,
		"0.0.0.0": false, "169.254.169.254": false, "fe80::1": false, "224.0.0.1": false,
		"255.255.255.255": false, "::ffff:169.254.169.254": false, "64:ff9b::a9fe:a9fe": false, "::": false,
	} {
		if got := g.Allowed(netip.MustParseAddr(s), 7000); got != want {
			t.Errorf("cluster %s: allowed %v, want %v", s, got, want)
		}
	}
	var be *BlockedError
	if err := g.CheckHost(context.Background(), "169.254.169.254", 80); !errors.As(err, &be) || !be.Cluster {
		t.Fatalf("cluster check of a link-local literal: %v", err)
	}
}

// listener accepts on 127.0.0.1 and records the peers it saw.
type listener struct {
	net.Listener
	mu    sync.Mutex
	peers []string
}

func listen(t *testing.T) (*listener, uint16) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{Listener: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.peers = append(l.peers, c.RemoteAddr().String())
			l.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l, uint16(ln.Addr().(*net.TCPAddr).Port)
}

// others returns the connections the listener accepted before a marker
// connection made now: connections are accepted in the order they were
// established, so once the marker is seen every earlier one has been.
func (l *listener) others(t *testing.T) []string {
	t.Helper()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	marker := c.LocalAddr().String()
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for i, p := range l.peers {
			if p == marker {
				out := append([]string(nil), l.peers[:i]...)
				l.mu.Unlock()
				return out
			}
		}
		l.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the marker connection was not accepted within 10s")
	return nil
}

func TestControlRefusesBeforeConnecting(t *testing.T) {
	ln, port := listen(t)
	g, _ := New(Config{}) // loopback denied
	d := net.Dialer{Control: g.Control}
	_, err := d.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(int(port)))
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("dial through Control: %v", err)
	}
	if got := ln.others(t); len(got) != 0 {
		t.Fatalf("the listener accepted %v", got)
	}
	if err := g.Control("udp4", "127.0.0.1:53", nil); !errors.Is(err, ErrBlocked) {
		t.Fatalf("udp: %v", err)
	}
	if err := g.Control("tcp4", "10.0.0.1:80", nil); !errors.Is(err, ErrBlocked) {
		t.Fatalf("private: %v", err)
	}
}

// fakeResolver answers from a table, one answer per call in turn (the
// last repeats): a name can resolve differently on each lookup.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   map[string]int
	err     error
}

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	as, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.9.8.7:53", IsNotFound: true}
	}
	i := min(f.calls[host], len(as)-1)
	f.calls[host]++
	var out []netip.Addr
	for _, a := range strings.Split(as[i], ",") {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func TestRebindingIsRefusedAtDialTime(t *testing.T) {
	ln, port := listen(t)
	// Public when checked at registration, loopback when dialled.
	r := &fakeResolver{answers: map[string][]string{"rebind.test": {"93.184.216.34", "127.0.0.1"}}, calls: map[string]int{}}
	g, _ := New(Config{Resolver: r})
	if err := g.CheckHost(context.Background(), "rebind.test", port); err != nil {
		t.Fatalf("registration check: %v", err)
	}
	_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("rebind.test", strconv.Itoa(int(port))))
	var be *BlockedError
	if !errors.As(err, &be) || be.Host != "rebind.test" {
		t.Fatalf("dial after rebinding: %v", err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("the error names the resolved address: %v", err)
	}
	if got := ln.others(t); len(got) != 0 {
		t.Fatalf("the listener accepted %v", got)
	}
}

func TestDialAllowedAndErrorsNameNoAddress(t *testing.T) {
	ln, port := listen(t)
	r := &fakeResolver{answers: map[string][]string{
		"receiver.test": {"127.0.0.1"},
		"mixed.test":    {"10.0.0.1,127.0.0.1"}, // the private one is skipped, never dialled
	}, calls: map[string]int{}}
	g, _ := New(Config{Resolver: r, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for _, host := range []string{"receiver.test", "mixed.test"} {
		c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		c.Close()
	}
	if got := ln.others(t); len(got) != 2 {
		t.Fatalf("the listener accepted %v, want the two dials", got)
	}
	// A closed port, and a name that does not resolve: the answers say
	// what failed without an address or the resolver.
	closed, _ := net.Listen("tcp4", "127.0.0.1:0")
	cport := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("receiver.test", strconv.Itoa(cport)))
	if err == nil || err.Error() != "connect receiver.test: connection refused" {
		t.Fatalf("closed port: %v", err)
	}
	_, err = g.DialContext(context.Background(), "tcp", "nowhere.test:80")
	if err == nil || err.Error() != "lookup nowhere.test: no such host" {
		t.Fatalf("unknown name: %v", err)
	}
	if err := g.CheckHost(context.Background(), "nowhere.test", 80); err != nil {
		t.Fatalf("an unresolvable name is left to delivery time: %v", err)
	}
	r.err = errors.New("dial udp 10.9.8.7:53: i/o timeout")
	_, err = g.DialContext(context.Background(), "tcp", "receiver.test:80")
	if err == nil || strings.Contains(err.Error(), "10.9.8.7") {
		t.Fatalf("resolver failure: %v", err)
	}
}
