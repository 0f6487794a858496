package raftstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/clusterport"
	"github.com/herald-io/herald/internal/pki"
	"github.com/herald-io/herald/internal/testutil"
)

// tlsNode is one Store on its own cluster port with a certificate of ca.
func tlsNode(t *testing.T, ca *pki.CA, id string, bootstrap bool) *Store {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.Certificate(certPEM, keyPEM, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := ca.Pool()
	ln, err := clusterport.Listen("127.0.0.1:0", pki.ServerConfig(cert, pool), func(cs *tls.ConnectionState) bool {
		_, ok := pki.PeerNodeID(*cs, pool)
		return ok
	}, testutil.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ID: id, Dir: filepath.Join(t.TempDir(), id), DB: mustDB(t), Logger: testutil.Quiet(), Bootstrap: bootstrap,
		Cluster: ln, Dialer: &clusterport.Dialer{TLS: pki.ClientConfig(cert, pool)},
		// Timeouts long enough that a loaded machine (-race beside another
		// test run) does not hold an election of its own: the test checks
		// that the outsiders cause none.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// attackStream is a raft StreamLayer for an attacker: plain TCP, or TLS
// on the cluster port's Raft channel with whatever certificate it has.
type attackStream struct {
	net.Listener
	dial func(addr string) (net.Conn, error)
}

func (a *attackStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return a.dial(string(addr))
}

// TestOutsidersCannotTouchRaft: a three-node cluster over the cluster
// port. A raw hashicorp/raft TCP client, a TLS client without a
// certificate, and one with a certificate of another CA each send every
// node a heartbeat with term 100 from leader "intruder", an entry the FSM
// would refuse ([0xff,0x01]) and a vote request. None reaches Raft: every
// node keeps its term and leader, nothing is committed, and a publish
// through the leader succeeds afterwards.
func TestOutsidersCannotTouchRaft(t *testing.T) {
	ca, err := pki.NewCA("test cluster", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s1 := tlsNode(t, ca, "s1", true)
	waitUntil(t, "s1 leads", s1.IsLeader)
	nodes := []*Store{s1, tlsNode(t, ca, "s2", false), tlsNode(t, ca, "s3", false)}
	for _, s := range nodes[1:] {
		if err := s1.AddVoter(s.ID(), s.Addr(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendOne(s1, "before"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every node applied", func() bool {
		for _, s := range nodes {
			if s.AppliedIndex() != s1.AppliedIndex() {
				return false
			}
		}
		return true
	})
	terms := map[string]uint64{}
	for _, s := range nodes {
		terms[s.ID()] = s.raft.CurrentTerm()
	}
	applied := s1.AppliedIndex()

	other, err := pki.NewCA("another cluster", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oc, ok, _ := other.Issue("s9", time.Now(), time.Hour)
	cert, err := pki.Certificate(oc, ok, other.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	attackers := map[string]func(addr string) (net.Conn, error){
		"raw TCP": func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) },
		"raw TCP with Herald's channel byte": func(addr string) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_, err = c.Write([]byte{clusterport.ChanRaft})
			}
			return c, err
		},
		"TLS without a certificate": func(addr string) (net.Conn, error) {
			d := &clusterport.Dialer{TLS: &tls.Config{InsecureSkipVerify: true}}
			return d.Dial(context.Background(), clusterport.ChanRaft, addr)
		},
		"TLS with another CA's certificate": func(addr string) (net.Conn, error) {
			d := &clusterport.Dialer{TLS: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, RootCAs: x509.NewCertPool()}}
			return d.Dial(context.Background(), clusterport.ChanRaft, addr)
		},
	}
	for name, dial := range attackers {
		lnAny, err := net.Listen("tcp", "127.0.0.1:0") // where "intruder" says it listens
		if err != nil {
			t.Fatal(err)
		}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: &attackStream{Listener: lnAny, dial: dial},
			MaxPool: 1, Timeout: time.Second, Logger: newHCLogger(testutil.Quiet(), "attacker")})
		for _, s := range nodes {
			target := raft.ServerAddress(s.Addr())
			var ar raft.AppendEntriesResponse
			err := trans.AppendEntries(raft.ServerID(s.ID()), target, &raft.AppendEntriesRequest{
				RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte(lnAny.Addr().String())},
				Term:      100, PrevLogEntry: applied, PrevLogTerm: terms[s.ID()], LeaderCommitIndex: applied + 1, Leader: []byte(lnAny.Addr().String()),
				Entries: []*raft.Log{{Index: applied + 1, Term: 100, Type: raft.LogCommand, Data: []byte{0xff, 0x01}}},
			}, &ar)
			if err == nil {
				t.Errorf("%s: %s accepted AppendEntries (success %v, term %d)", name, s.ID(), ar.Success, ar.Term)
			}
			var vr raft.RequestVoteResponse
			if err := trans.RequestVote(raft.ServerID(s.ID()), target, &raft.RequestVoteRequest{
				RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte(lnAny.Addr().String())}, Term: 100,
				LastLogIndex: applied + 10, LastLogTerm: 100,
			}, &vr); err == nil {
				t.Errorf("%s: %s answered RequestVote (granted %v)", name, s.ID(), vr.Granted)
			}
		}
		trans.Close()
	}
	for _, s := range nodes {
		if got := s.raft.CurrentTerm(); got != terms[s.ID()] {
			t.Errorf("%s: term %d, was %d", s.ID(), got, terms[s.ID()])
		}
		if id, _ := s.Leader(); id != "s1" {
			t.Errorf("%s follows %q", s.ID(), id)
		}
	}
	if !s1.IsLeader() {
		t.Fatal("s1 lost leadership")
	}
	if err := appendOne(s1, "after"); err != nil {
		t.Fatalf("publish after the attacks: %v", err)
	}
	waitUntil(t, "every node applied the publish", func() bool {
		for _, s := range nodes {
			if s.AppliedIndex() != s1.AppliedIndex() {
				return false
			}
		}
		return true
	})
	for _, s := range nodes {
		if got := s.AppliedIndex(); got != applied+1 {
			t.Errorf("%s applied %d, want %d (one entry: the publish)", s.ID(), got, applied+1)
		}
	}
}
