package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	cmd      *exec.Cmd
	out      *bytes.Buffer
	stopped  bool // SIGSTOPped
	running  bool
	restarts int
}

func freePort(t *testing.T, ip string) string {
	t.Helper()
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
	n.cmd = exec.Command(heraldBin, args...)
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
	n.join = ""
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
	c.nodes[0].start()
	waitFor(t, 20*time.Second, "n1 ready", func() bool { return status(c.nodes[0].http, "/readyz") == 200 })
	for _, n := range c.nodes[1:] {
		n.join = c.nodes[0].http
		n.start()
	}
	waitFor(t, 30*time.Second, "all members registered", func() bool { return c.formed() })
	return c
}

func (c *cluster) formed() bool {
	for _, n := range c.nodes {
		var ci clusterInfo
		if getInto(n.http, "/v1/cluster?consistency=local", &ci) != nil || ci.Leader == "" || len(ci.Nodes) != len(c.nodes) {
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

type clusterInfo struct {
	Leader string `json:"leader"`
	Nodes  []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
		State    string `json:"state"`
	} `json:"nodes"`
}

// leader returns the node every running, unpaused node agrees leads.
func (c *cluster) leader() *node {
	var id string
	waitFor(c.t, 20*time.Second, "an agreed leader", func() bool {
		id = ""
		for _, n := range c.nodes {
			if !n.running || n.stopped {
				continue
			}
			var ci clusterInfo
			if getInto(n.http, "/v1/cluster?consistency=local", &ci) != nil || ci.Leader == "" {
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

var client = &http.Client{Timeout: 5 * time.Second}

func status(addr, path string) int {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getInto(addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func postJSON(addr, path, body string, v any) (int, error) {
	resp, err := client.Post("http://"+addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode/100 == 2 {
		return resp.StatusCode, json.Unmarshal(b, v)
	}
	return resp.StatusCode, nil
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// term stops the process gracefully (SIGTERM: a leader hands leadership
// over first) and waits for it to exit.
func (n *node) term() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("%s did not stop within 30s of SIGTERM", n.id)
	}
	n.running = false
}
