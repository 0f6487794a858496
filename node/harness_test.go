package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/netguard"
	"github.com/herald-io/herald/internal/testutil"
)

// testLogger is quiet unless HERALD_TEST_LOG=1; waitFor polls with a
// deadline. Both are the shared helpers of internal/testutil, under the
// names this package's tests use.
var (
	testLogger = testutil.Quiet
	waitFor    = testutil.WaitFor
)

// testNode is a node the test can stop and start again on the same data
// dir and addresses.
type testNode struct {
	t   testing.TB
	cfg Config
	*Node
}

// testLogStore is the Raft log store of the tests' nodes:
// HERALD_TEST_RAFT_LOG_STORE=bolt runs them on raft-boltdb (default wal,
// as in production; logstore_test.go runs both, and both together, in
// any case).
var testLogStore = func() string {
	switch v := os.Getenv("HERALD_TEST_RAFT_LOG_STORE"); v {
	case "", RaftLogStoreWAL:
		return RaftLogStoreWAL
	case RaftLogStoreBolt:
		return v
	default:
		panic(fmt.Sprintf("HERALD_TEST_RAFT_LOG_STORE=%q: want wal or bolt", v))
	}
}()

// raftLogFile is what the tests' nodes' Raft log is called in the data
// dir (and in herald_db_size_bytes).
func raftLogFile() string {
	if testLogStore == RaftLogStoreBolt {
		return "raft.db"
	}
	return "wal"
}

func fastConfig(id, dir string) Config {
	return Config{
		ID:                 id,
		DataDir:            dir,
		RaftLogStore:       testLogStore,
		HTTPAddr:           "127.0.0.1:0", // mustStart pins ports outside the ephemeral range
		RaftAddr:           "127.0.0.1:0",
		Logger:             testLogger(),
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		NoAuth:             true,              // auth_test.go turns it on
		DeliveryAllow:      netguard.Loopback, // the tests' receivers; guard_test.go turns it off
	}
}

// joinToken makes a join token on the current leader of nodes (asking
// again if leadership moves meanwhile).
func joinToken(t testing.TB, nodes []*testNode) string {
	t.Helper()
	var tok string
	waitFor(t, 20*time.Second, "a join token from the leader", func() bool {
		for _, n := range nodes {
			if n.Node == nil || !n.IsLeader() {
				continue
			}
			if n.tls.ca == nil {
				return true // the operator's certificates: no tokens
			}
			jt, err := n.CreateJoinToken(context.Background(), time.Hour)
			if err == nil {
				tok = jt.Token
				return true
			}
		}
		return false
	})
	return tok
}

// mustStart starts a node from cfg; on first start it pins the picked
// ports into cfg so a restart reuses them.
func mustStart(t testing.TB, cfg Config) *testNode {
	t.Helper()
	// A restart reuses the ports: take them outside the ephemeral range,
	// where no outgoing connection can take them meanwhile.
	if cfg.HTTPAddr == "127.0.0.1:0" {
		cfg.HTTPAddr = testutil.LoopbackAddr(t)
	}
	if cfg.RaftAddr == "127.0.0.1:0" {
		cfg.RaftAddr = testutil.LoopbackAddr(t)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Open(); err != nil {
		t.Fatalf("open %s: %v", cfg.ID, err)
	}
	cfg.HTTPAddr = n.HTTPAddr()
	cfg.RaftAddr = n.RaftAddr()
	tn := &testNode{t: t, cfg: cfg, Node: n}
	t.Cleanup(func() { closeNode(t, n) })
	return tn
}

// stop closes the node (no leadership transfer: like a crash, minus the
// lost page cache).
func (tn *testNode) stop() {
	tn.t.Helper()
	if err := tn.Node.Close(); err != nil {
		tn.t.Errorf("close %s: %v", tn.cfg.ID, err)
	}
}

// restart starts the node again from its data dir alone.
func (tn *testNode) restart() {
	tn.t.Helper()
	cfg := tn.cfg
	cfg.Bootstrap, cfg.Join, cfg.JoinToken = false, nil, ""
	n, err := New(cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	if err := n.Open(); err != nil {
		tn.t.Fatalf("reopen %s: %v", cfg.ID, err)
	}
	tn.Node = n
	tn.t.Cleanup(func() { closeNode(tn.t, n) })
}

// closeNode closes n at the end of a test (a no-op for a node the test
// stopped already) and reports a failed close.
func closeNode(t testing.TB, n *Node) {
	if err := n.Close(); err != nil {
		t.Errorf("close %s: %v", n.ID(), err)
	}
}

// mustStartCluster starts n nodes: the first bootstraps, the others join
// through it. It returns once every node sees the same leader and all
// members are voters.
func mustStartCluster(t testing.TB, size int, tweak func(*Config)) []*testNode {
	t.Helper()
	base := t.TempDir()
	var nodes []*testNode
	nonVoter := map[string]bool{}
	for i := 1; i <= size; i++ {
		cfg := fastConfig(fmt.Sprintf("n%d", i), filepath.Join(base, fmt.Sprintf("n%d", i)))
		if i == 1 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{nodes[0].HTTPAddr()}
			cfg.JoinToken = joinToken(t, nodes)
		}
		if tweak != nil {
			tweak(&cfg)
		}
		nonVoter[cfg.ID] = cfg.NonVoter
		nodes = append(nodes, mustStart(t, cfg))
		if i == 1 {
			waitFor(t, 10*time.Second, "first node leads", func() bool { return nodes[0].IsLeader() })
		}
	}
	waitFor(t, 20*time.Second, "cluster formed", func() bool {
		for _, n := range nodes {
			info, err := n.Cluster(context.Background(), api.ConsistencyLocal)
			if err != nil || info.Leader == "" || len(info.Nodes) != size {
				return false
			}
			for _, m := range info.Nodes {
				// A joining voter is a non-voter until it caught up.
				if m.HTTPAddr == "" || (m.Suffrage == "voter") == nonVoter[m.ID] {
					return false
				}
			}
		}
		return true
	})
	return nodes
}

func leaderOf(t testing.TB, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.Node != nil && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// clientOf is an API client for one node, trying each call once: the
// tests check every answer.
func clientOf(t testing.TB, n *testNode) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Addresses: []string{n.HTTPAddr()}, MaxRetries: -1, Timeout: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publish publishes body (one event, or {"events":[...]}) to the node at
// addr through api.Client, with an Idempotency-Key when hdr names one,
// and returns the status and the JSON answer as the node wrote them (an
// error body for an API error, the error text with status 0 for a
// transport error).
func publish(t testing.TB, addr, store, body string, hdr ...string) (int, []byte) {
	t.Helper()
	c, err := api.NewClient(api.Config{Addresses: []string{addr}, MaxRetries: -1, Timeout: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var res *api.PublishResult
	if strings.Contains(body, `"events"`) {
		var b api.PublishBatch
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatalf("test batch %s: %v", body, err)
		}
		res, err = c.PublishBatch(ctx, store, b.Events)
	} else {
		var ev api.NewEvent
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatalf("test event %s: %v", body, err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == api.HeaderIdempotencyKey {
				ev.IdempotencyKey = hdr[i+1]
			}
		}
		res, err = c.Publish(ctx, store, ev)
	}
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		b, _ := json.Marshal(api.ErrorBody{Error: api.ErrorDetail{Code: ae.Code, Message: ae.Message}})
		return ae.StatusCode, b
	case err != nil:
		return 0, []byte(err.Error())
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	if !strings.Contains(body, `"events"`) {
		return status, res.Events[0].AppendJSON(nil)
	}
	out := []byte(`{"events":[`)
	for i := range res.Events {
		if i > 0 {
			out = append(out, ',')
		}
		out = res.Events[i].AppendJSON(out)
	}
	return status, append(out, "]}"...)
}

// mustPublish publishes body and fails the test unless it was stored
// (201).
func mustPublish(t testing.TB, addr, store, body string) {
	t.Helper()
	if code, b := publish(t, addr, store, body); code != http.StatusCreated {
		t.Fatalf("publish to %s: %d %s", addr, code, b)
	}
}

type storeInfo struct {
	Store    string `json:"store"`
	LastSeq  uint64 `json:"last_seq"`
	HeadHash string `json:"head_hash"`
	Events   uint64 `json:"events"`
}

// localStore reads a store's summary from one node's own state.
func localStore(t testing.TB, n *testNode, store string) storeInfo {
	t.Helper()
	si, err := n.DB().Store(store)
	if err != nil {
		return storeInfo{}
	}
	return storeInfo{Store: si.Name, LastSeq: si.LastSeq, HeadHash: si.HeadHash, Events: si.Events}
}

// waitConverged waits until every node holds lastSeq events of store with
// the same head hash, and checks each chain.
func waitConverged(t testing.TB, nodes []*testNode, store string, lastSeq uint64) string {
	t.Helper()
	var head string
	waitFor(t, 30*time.Second, fmt.Sprintf("all nodes at %s/%d with one head", store, lastSeq), func() bool {
		head = ""
		for _, n := range nodes {
			si := localStore(t, n, store)
			if si.LastSeq != lastSeq {
				return false
			}
			if head == "" {
				head = si.HeadHash
			} else if si.HeadHash != head {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if err := n.DB().VerifyChain(store); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
	}
	return head
}

func removeFile(p string) error { return os.Remove(p) }
