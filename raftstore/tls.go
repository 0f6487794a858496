package raftstore

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is a raft StreamLayer over mutually authenticated TLS: every
// connection, in and out, must present a certificate signed by the
// cluster's CA, so a node with any other certificate can neither send nor
// receive Raft traffic.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

func newTLSStream(bind string, advertise net.Addr, cfg *tls.Config) (*tlsStream, error) {
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.RootCAs == nil || cfg.ClientCAs == nil {
		return nil, errors.New("raftstore: Raft TLS needs a certificate and the cluster CA (as RootCAs and ClientCAs)")
	}
	cfg = cfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	ln, err := tls.Listen("tcp", bind, cfg)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	return &tlsStream{Listener: ln, advertise: advertise, cfg: cfg}, nil
}

// Dial connects to a peer, verifying its certificate against the CA (and
// the address it was dialled at) and presenting this node's own.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), s.cfg)
}

// Addr is the address peers dial.
func (s *tlsStream) Addr() net.Addr { return s.advertise }
