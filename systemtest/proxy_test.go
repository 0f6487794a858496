package systemtest

import (
	"io"
	"net"
	"sync"
)

// proxy forwards TCP connections to a node's Raft port and drops those
// from peers it has been told to cut, identified by source IP.
type proxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	cut     map[string]bool       // source IP -> refused
	conns   map[net.Conn]string   // open client connections -> source IP
	pairs   map[net.Conn]net.Conn // client -> backend connection
	closing bool
}

func newProxy(listen, backend string) (*proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, backend: backend, cut: map[string]bool{}, conns: map[net.Conn]string{}, pairs: map[net.Conn]net.Conn{}}
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		src, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		p.mu.Lock()
		refused := p.cut[src] || p.closing
		p.mu.Unlock()
		if refused {
			c.Close()
			continue
		}
		go p.pipe(c, src)
	}
}

func (p *proxy) pipe(c net.Conn, src string) {
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut[src] || p.closing {
		p.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	p.conns[c], p.pairs[c] = src, b
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.pairs, c)
	p.mu.Unlock()
}

// cutFrom refuses connections from ip and closes the open ones.
func (p *proxy) cutFrom(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[ip] = true
	for c, src := range p.conns {
		if src == ip {
			c.Close()
			p.pairs[c].Close()
		}
	}
}

// heal lets everyone through again.
func (p *proxy) heal() {
	p.mu.Lock()
	p.cut = map[string]bool{}
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closing = true
	for c := range p.conns {
		c.Close()
		p.pairs[c].Close()
	}
	p.mu.Unlock()
	p.ln.Close()
}
