package systemtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

var (
	heraldBin string
	cycles    = flag.Int("cycles", 2, "fault cycles of TestFaults (each injects every kind of fault once)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the tests skip themselves
	}
	dir, err := os.MkdirTemp("", "herald-systemtest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	if out, err := exec.Command("go", "build", "-o", heraldBin, "../cmd/herald").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one `herald serve` process. Its Raft port is reached through a
// proxy that can cut it off from chosen peers.
type node struct {
	t        *testing.T
	id, ip   string
	dir      string
	http     string // API address (127.0.0.1:port), not partitioned
	raft     string // the process's own Raft listener
	proxy    *proxy // what peers dial
	join     string
	token    string // join token, with join
	bin      string // the binary (default heraldBin)
	cmd      *exec.Cmd
	out      *bytes.Buffer
	stopped  bool // SIGSTOPped
	running  bool
	restarts int
}

// freePort returns a free address on ip, for a node that is killed and
// restarted on it: on 127.0.0.1 a port below the ephemeral range, which
// no outgoing connection takes meanwhile (testutil.LoopbackAddr).
func freePort(t *testing.T, ip string) string {
	t.Helper()
	if ip == "127.0.0.1" {
		return testutil.LoopbackAddr(t)
	}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (n *node) start() {
	n.t.Helper()
	args := []string{"serve", "--data", n.dir, "--http", n.http, "--raft", n.raft, "--raft-advertise", n.proxy.addr(),
		"--node-id", n.id, "--log-level", "warn",
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease-timeout", "250ms"}
	if n.join != "" {
		args = append(args, "--join", n.join)
	}
	if n.token != "" {
		args = append(args, "--join-token", n.token)
	}
	bin := heraldBin
	if n.bin != "" {
		bin = n.bin // a release from before the address guard
	} else {
		args = append(args, "--delivery-allow", "127.0.0.0/8") // the tests' receivers
		if s := os.Getenv("HERALD_TEST_RAFT_LOG_STORE"); s != "" && !hasRaftState(n.dir) {
			// A new node's log store (an existing one keeps its own).
			args = append(args, "--raft-log-store", s)
		}
	}
	n.cmd = exec.Command(bin, args...)
	n.out = &bytes.Buffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.running, n.stopped = true, false
	cmd, out := n.cmd, n.out
	n.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
		if n.t.Failed() {
			n.t.Logf("%s (%s) output:\n%s", n.id, n.ip, tail(out.String(), 4000))
		}
	})
}

// hasRaftState reports whether dir holds a Raft log store already.
func hasRaftState(dir string) bool {
	for _, p := range []string{"raft.db", "wal"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (n *node) kill9() {
	n.t.Helper()
	if n.stopped {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
	n.running = false
}

func (n *node) restart() {
	n.t.Helper()
	n.join, n.token = "", ""
	n.restarts++
	n.start()
}

func (n *node) pause() {
	n.cmd.Process.Signal(syscall.SIGSTOP)
	n.stopped = true
}

func (n *node) resume() {
	n.cmd.Process.Signal(syscall.SIGCONT)
	n.stopped = false
}

type cluster struct {
	t     *testing.T
	nodes []*node
}

// startCluster starts size nodes; node i listens for Raft on 127.0.0.(10+i).
func startCluster(t *testing.T, size int) *cluster {
	t.Helper()
	c := newCluster(t, size)
	c.nodes[0].start()
	testutil.WaitFor(t, 20*time.Second, "n1 ready", func() bool { return ready(c.nodes[0].http) })
	key := waitAdminKey(t, c.nodes[0].dir)
	for _, n := range c.nodes {
		adminKeys.Store(n.http, key)
	}
	for _, n := range c.nodes[1:] {
		n.join = c.nodes[0].http
		n.token = joinToken(t, c.nodes[0].http)
		n.start()
	}
	testutil.WaitFor(t, 30*time.Second, "all members registered", func() bool { return c.formed() })
	return c
}

// newCluster lays out size nodes (addresses, proxies) without starting
// them.
func newCluster(t *testing.T, size int) *cluster {
	t.Helper()
	base := t.TempDir()
	c := &cluster{t: t}
	for i := 1; i <= size; i++ {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		n := &node{t: t, id: fmt.Sprintf("n%d", i), ip: ip, dir: filepath.Join(base, fmt.Sprintf("n%d", i)),
			http: freePort(t, "127.0.0.1"), raft: freePort(t, ip)}
		p, err := newProxy(ip+":0", n.raft)
		if err != nil {
			t.Skipf("cannot listen on %s (loopback aliases): %v", ip, err)
		}
		t.Cleanup(p.close)
		n.proxy = p
		c.nodes = append(c.nodes, n)
	}
	return c
}

func (c *cluster) formed() bool {
	for _, n := range c.nodes {
		ci, err := localCluster(n.http)
		if err != nil || ci.Leader == "" || len(ci.Nodes) != len(c.nodes) {
			return false
		}
		for _, m := range ci.Nodes {
			if m.HTTPAddr == "" {
				return false
			}
		}
	}
	return true
}

// leader returns the node every running, unpaused node agrees leads.
func (c *cluster) leader() *node {
	var id string
	testutil.WaitFor(c.t, 20*time.Second, "an agreed leader", func() bool {
		id = ""
		for _, n := range c.nodes {
			if !n.running || n.stopped {
				continue
			}
			ci, err := localCluster(n.http)
			if err != nil || ci.Leader == "" {
				return false
			}
			if id == "" {
				id = ci.Leader
			} else if id != ci.Leader {
				return false
			}
		}
		return id != ""
	})
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("leader %q unknown", id)
	return nil
}

// isolate cuts n's Raft traffic to and from every other node.
func (c *cluster) isolate(n *node) {
	for _, o := range c.nodes {
		if o != n {
			o.proxy.cutFrom(n.ip)
			n.proxy.cutFrom(o.ip)
		}
	}
}

func (c *cluster) heal() {
	for _, n := range c.nodes {
		n.proxy.heal()
	}
}

// adminKeys holds the admin key of the cluster each node (by HTTP
// address) belongs to.
var adminKeys sync.Map

// waitAdminKey reads the admin key the first node of a new cluster
// writes to its data dir.
func waitAdminKey(t *testing.T, dir string) string {
	t.Helper()
	var key string
	testutil.WaitFor(t, 20*time.Second, "the first admin key in "+dir, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "admin.key"))
		key = strings.TrimSpace(string(b))
		return err == nil && strings.HasPrefix(key, "hk_")
	})
	return key
}

// joinToken asks the cluster at addr (any member) for a join token.
func joinToken(t *testing.T, addr string) string {
	t.Helper()
	c, err := api.NewClient(api.Config{Addresses: []string{addr}, APIKey: keyOf(addr), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateJoinToken(context.Background(), "10m")
	if err != nil {
		t.Fatalf("join token from %s: %v", addr, err)
	}
	return tok.Token
}

func keyOf(addr string) string {
	k, _ := adminKeys.Load(addr)
	s, _ := k.(string)
	return s
}

// apiOf is an API client for the node at addr, with its cluster's admin
// key, that tries each call once (the workloads retry as they choose)
// within 5 s.
func apiOf(addr string) *api.Client {
	c, err := api.NewClient(api.Config{Addresses: []string{addr}, APIKey: keyOf(addr), MaxRetries: -1, Timeout: 5 * time.Second})
	if err != nil {
		panic(err) // a host:port from freePort
	}
	return c
}

// ready reports whether the node at addr answers /readyz with 200.
func ready(addr string) bool { return apiOf(addr).Ready(context.Background()) == nil }

// localCluster is the node's own view of the cluster.
func localCluster(addr string) (*api.Cluster, error) {
	return apiOf(addr).Cluster(context.Background(), &api.QueryOptions{Consistency: api.ConsistencyLocal})
}

// term stops the process gracefully (SIGTERM: a leader hands leadership
// over first) and waits for it to exit.
func (n *node) term() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			n.t.Errorf("%s exited with %v after SIGTERM (a graceful stop exits 0)", n.id, err)
		}
	case <-time.After(30 * time.Second):
		n.t.Fatalf("%s did not stop within 30s of SIGTERM", n.id)
	}
	n.running = false
}
