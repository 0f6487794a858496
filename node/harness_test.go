package node

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/herald-io/herald/httpapi"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLogger is quiet unless HERALD_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("HERALD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testNode is a node the test can stop and start again on the same data
// dir and addresses.
type testNode struct {
	t   testing.TB
	cfg Config
	*Node
}

func fastConfig(id, dir string) Config {
	return Config{
		ID:                 id,
		DataDir:            dir,
		HTTPAddr:           "127.0.0.1:0",
		RaftAddr:           "127.0.0.1:0",
		Logger:             testLogger(),
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
	}
}

// mustStart starts a node from cfg; on first start it pins the picked
// ports into cfg so a restart reuses them.
func mustStart(t testing.TB, cfg Config) *testNode {
	t.Helper()
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
	t.Cleanup(func() { tn.Node.Close() })
	return tn
}

// stop closes the node (no leadership transfer: like a crash, minus the
// lost page cache).
func (tn *testNode) stop() {
	tn.t.Helper()
	if err := tn.Node.Close(); err != nil {
		tn.t.Logf("close %s: %v", tn.cfg.ID, err)
	}
}

// restart starts the node again from its data dir alone.
func (tn *testNode) restart() {
	tn.t.Helper()
	cfg := tn.cfg
	cfg.Bootstrap, cfg.Join = false, nil
	n, err := New(cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	if err := n.Open(); err != nil {
		tn.t.Fatalf("reopen %s: %v", cfg.ID, err)
	}
	tn.Node = n
	tn.t.Cleanup(func() { n.Close() })
}

func (tn *testNode) url(path string) string { return "http://" + tn.HTTPAddr() + path }

// mustStartCluster starts n nodes: the first bootstraps, the others join
// through it. It returns once every node sees the same leader and all
// members are voters.
func mustStartCluster(t testing.TB, size int, tweak func(*Config)) []*testNode {
	t.Helper()
	base := t.TempDir()
	var nodes []*testNode
	for i := 1; i <= size; i++ {
		cfg := fastConfig(fmt.Sprintf("n%d", i), filepath.Join(base, fmt.Sprintf("n%d", i)))
		if i == 1 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{nodes[0].HTTPAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		nodes = append(nodes, mustStart(t, cfg))
		if i == 1 {
			waitFor(t, 10*time.Second, "first node leads", func() bool { return nodes[0].IsLeader() })
		}
	}
	waitFor(t, 20*time.Second, "cluster formed", func() bool {
		for _, n := range nodes {
			info, err := n.Cluster(context.Background(), httpapi.Local)
			if err != nil || info.Leader == "" || len(info.Nodes) != size {
				return false
			}
			for _, m := range info.Nodes {
				if m.HTTPAddr == "" {
					return false
				}
			}
		}
		return true
	})
	return nodes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
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

var httpc = &http.Client{Timeout: 40 * time.Second}

type apiEvent struct {
	ID        string          `json:"id"`
	Store     string          `json:"store"`
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Version   string          `json:"version"`
	Data      json.RawMessage `json:"data"`
	Hash      string          `json:"hash"`
}

// publish POSTs body to a node and returns status and response body.
func publish(t testing.TB, addr, store, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/stores/"+store+"/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := httpc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
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

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
