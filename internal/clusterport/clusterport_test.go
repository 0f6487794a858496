package clusterport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/pki"
	"github.com/herald-io/herald/internal/testutil"
)

func listener(t *testing.T) (*Listener, *pki.CA, tls.Certificate) {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(id string) tls.Certificate {
		c, k, err := ca.Issue(id, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.Certificate(c, k, ca.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	pool := ca.Pool()
	ln, err := Listen("127.0.0.1:0", pki.ServerConfig(issue("server"), pool), func(cs *tls.ConnectionState) bool {
		_, ok := pki.PeerNodeID(*cs, pool)
		return ok
	}, testutil.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ca, issue("client")
}

// accept returns the next connection of l within 5 s, or nil.
func accept(l net.Listener) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		return nil
	}
}

// TestChannels: a member reaches both channels; a client without a
// certificate reaches HTTP only; a stray byte is dropped.
func TestChannels(t *testing.T) {
	ln, ca, cert := listener(t)
	addr := ln.Addr().String()
	member := &Dialer{TLS: pki.ClientConfig(cert, ca.Pool())}
	for _, ch := range []byte{ChanRaft, ChanHTTP} {
		c, err := member.Dial(context.Background(), ch, addr)
		if err != nil {
			t.Fatalf("member on %q: %v", ch, err)
		}
		dst := ln.Raft()
		if ch == ChanHTTP {
			dst = ln.HTTP()
		}
		got := accept(dst)
		if got == nil {
			t.Fatalf("channel %q got no connection", ch)
		}
		c.Write([]byte("x"))
		b := make([]byte, 1)
		if _, err := io.ReadFull(got, b); err != nil || b[0] != 'x' {
			t.Fatalf("channel %q: read %q %v", ch, b, err)
		}
		c.Close()
		got.Close()
	}

	// Enrolling: no certificate, the CA pinned. HTTP takes it.
	stranger := &Dialer{TLS: pki.PinnedConfig(ca.Fingerprint())}
	c, err := stranger.Dial(context.Background(), ChanHTTP, addr)
	if err != nil {
		t.Fatalf("no certificate on HTTP: %v", err)
	}
	if accept(ln.HTTP()) == nil {
		t.Fatal("HTTP refused a client without a certificate")
	}
	c.Close()

	// Raft does not: the connection is closed after the handshake and
	// never handed over.
	c, err = stranger.Dial(context.Background(), ChanRaft, addr)
	if err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); !closedByPeer(rerr) {
			t.Fatalf("Raft channel kept a client without a certificate open (%v)", rerr)
		}
		c.Close()
	}

	// A byte that names no channel (plain TCP Raft starts with 0-3).
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 1, 2, 3})
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); !closedByPeer(err) {
		t.Fatalf("a plain TCP Raft connection was kept open (%v)", err)
	}
	raw.Close()

	// Close ends both channels' Accept, and does not wait for a
	// connection that sent nothing yet.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	testutil.WaitFor(t, 5*time.Second, "the silent connection accepted", func() bool {
		ln.mu.Lock()
		defer ln.mu.Unlock()
		return len(ln.pending) == 1
	})
	start := time.Now()
	ln.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close waited %v for a silent connection", d)
	}
	if _, err := ln.Raft().Accept(); err != ErrClosed {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// closedByPeer reports an error that says the other end closed the
// connection (not a read deadline passing).
func closedByPeer(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
