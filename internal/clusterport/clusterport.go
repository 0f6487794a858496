package clusterport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Channels: the first byte of every connection.
const (
	ChanRaft byte = 'R'
	ChanHTTP byte = 'H'
)

// HandshakeTimeout bounds the channel byte and the TLS handshake of an
// incoming connection.
const HandshakeTimeout = 10 * time.Second

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("clusterport: closed")

// Listener accepts cluster connections and sorts them by channel.
type Listener struct {
	ln     net.Listener
	cfg    *tls.Config
	member func(*tls.ConnectionState) bool
	log    *slog.Logger

	raft, http *chanListener
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // connections still in their handshake
}

// Listen listens on bind. cfg is the server side of TLS (the node's
// certificate; client certificates requested or required); member says
// whether a handshake's peer is a member of the cluster, which every Raft
// connection must be.
func Listen(bind string, cfg *tls.Config, member func(*tls.ConnectionState) bool, logger *slog.Logger) (*Listener, error) {
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("clusterport: a TLS certificate is required")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	l := &Listener{ln: ln, cfg: cfg, member: member, log: logger, done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	l.raft = &chanListener{parent: l, ch: make(chan net.Conn)}
	l.http = &chanListener{parent: l, ch: make(chan net.Conn)}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Raft is the listener of Raft connections (from members only).
func (l *Listener) Raft() net.Listener { return l.raft }

// HTTP is the listener of node-to-node HTTP connections.
func (l *Listener) HTTP() net.Listener { return l.http }

// Close stops accepting and closes connections not yet handed over.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		// Connections still in their handshake are closed, not waited
		// for (a peer that sends nothing would hold Close for the whole
		// handshake timeout).
		l.mu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond) // out of file descriptors: back off
				continue
			}
			l.log.Error("cluster port: accept failed", "error", err)
			return
		}
		l.wg.Add(1)
		go l.sort(c)
	}
}

// sort reads the channel byte, completes the handshake and hands the
// connection to its channel's listener.
func (l *Listener) sort(c net.Conn) {
	defer l.wg.Done()
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		c.Close()
		return
	default:
	}
	l.pending[c] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, c)
		l.mu.Unlock()
	}()
	c.SetDeadline(time.Now().Add(HandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	var dst *chanListener
	switch b[0] {
	case ChanRaft:
		dst = l.raft
	case ChanHTTP:
		dst = l.http
	default:
		l.log.Warn("cluster port: refused a connection that is not Herald's (plain TCP Raft from a node without TLS?)", "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	tc := tls.Server(c, l.cfg)
	if err := tc.Handshake(); err != nil {
		l.log.Warn("cluster port: TLS handshake failed", "remote", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	if dst == l.raft {
		cs := tc.ConnectionState()
		if l.member == nil || !l.member(&cs) {
			l.log.Warn("cluster port: refused Raft from a peer without a cluster certificate", "remote", c.RemoteAddr().String())
			c.Close()
			return
		}
	}
	c.SetDeadline(time.Time{})
	select {
	case dst.ch <- tc:
	case <-l.done:
		c.Close()
	}
}

// chanListener is one channel's net.Listener.
type chanListener struct {
	parent *Listener
	ch     chan net.Conn
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.parent.done:
		return nil, ErrClosed
	}
}

// Close closes the whole cluster port: Raft and HTTP stop together.
func (c *chanListener) Close() error   { return c.parent.Close() }
func (c *chanListener) Addr() net.Addr { return c.parent.Addr() }

// Dialer opens cluster connections.
type Dialer struct {
	// TLS is the client side: the node's certificate (absent while
	// enrolling) and how the server is verified.
	TLS *tls.Config
	// Local, if set, is the address connections come from (the IP the
	// node listens on, so peers and firewalls see which node it is).
	Local *net.TCPAddr
	// Control, if set, vets the address actually dialled before the
	// connection is attempted (node sets the cluster address guard).
	Control func(network, address string, c syscall.RawConn) error
}

// Dial opens a connection on channel ch to addr and completes the TLS
// handshake before it returns.
func (d *Dialer) Dial(ctx context.Context, ch byte, addr string) (*tls.Conn, error) {
	nd := &net.Dialer{Control: d.Control}
	if d.Local != nil {
		nd.LocalAddr = d.Local
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, HandshakeTimeout)
		defer cancel()
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte{ch}); err != nil {
		c.Close()
		return nil, err
	}
	cfg := d.TLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		// Operator certificates are checked against the host dialled.
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}
