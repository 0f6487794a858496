package raftstore

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/clusterport"
)

// clusterStream is the raft StreamLayer over the node's cluster port:
// every connection is TLS, and one arrives here only once the listener
// has checked that the peer's certificate is a cluster member's, so a
// peer without one can neither send nor receive Raft traffic.
type clusterStream struct {
	net.Listener
	advertise net.Addr
	dialer    *clusterport.Dialer
}

func newClusterStream(ln *clusterport.Listener, d *clusterport.Dialer, advertise net.Addr) (*clusterStream, error) {
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		return nil, fmt.Errorf("raftstore: %s is not an address peers can dial: set an advertise address (--raft-advertise)", advertise)
	}
	return &clusterStream{Listener: ln.Raft(), advertise: advertise, dialer: d}, nil
}

// Dial connects to a peer's Raft channel, verifying its certificate and
// presenting this node's own.
func (s *clusterStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dialer.Dial(ctx, clusterport.ChanRaft, string(addr))
}

// Addr is the address peers dial.
func (s *clusterStream) Addr() net.Addr { return s.advertise }
