package raftstore

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is the plain TCP StreamLayer. Unlike raft's own, it dials from
// the IP it listens on when that is a specific address: a node bound to
// 10.0.0.5 talks from 10.0.0.5, so peers, firewalls and the fault-injection
// proxies of the system tests see which node a connection comes from.
type tcpStream struct {
	net.Listener
	advertise net.Addr
	local     *net.TCPAddr // nil: let the kernel choose
}

func newTCPStream(bind string, advertise net.Addr) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raftstore: %s is not an address peers can dial: set an advertise address", advertise)
	}
	s := &tcpStream{Listener: ln, advertise: advertise}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		s.local = &net.TCPAddr{IP: a.IP}
	}
	return s, nil
}

// Dial connects to a peer.
func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.local != nil {
		d.LocalAddr = s.local
	}
	return d.Dial("tcp", string(addr))
}

// Addr is the address peers dial.
func (s *tcpStream) Addr() net.Addr { return s.advertise }
