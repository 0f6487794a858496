package main

// Test helpers shared by the CLI tests. The CLI is tested as users run it:
// TestMain builds the binary once and the tests run it as a subprocess
// (stdout, stderr, exit status) against nodes started in the test process.
// Every address is on 127.0.0.1. The process-level fault tests (kill -9,
// SIGSTOP, partitions) live in systemtest/.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	"github.com/herald-io/herald/node"
)

var (
	heraldBin string
	// gitHead is the commit the binary is built from, "" when git cannot
	// tell (then the binary carries no VCS stamp).
	gitHead string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-cli-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	args := []string{"build", "-o", heraldBin, "-ldflags", "-X main.Version=test-version"}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		gitHead = strings.TrimSpace(string(out))
		args = append(args, "-buildvcs=true") // stamp the revision, whatever GOFLAGS says
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary produced.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// opts are the environment (added to a clean one: no HERALD_* of the
// caller's, TZ=UTC unless given) and stdin of a run.
type opts struct {
	env   []string
	stdin string
	dir   string
}

// baseEnv is the test process's environment without HERALD_ variables,
// with TZ=UTC.
func baseEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") && !strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TZ=UTC")
	return append(env, extra...)
}

// herald runs the binary to completion (at most two minutes).
func herald(t testing.TB, o opts, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, args...)
	cmd.Env = baseEnv(o.env)
	cmd.Dir = o.dir
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("herald %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("herald %s: did not finish in time\n%s", strings.Join(args, " "), r)
	}
	return r
}

// client runs client commands against one address (added as --addr).
type client struct {
	t    *testing.T
	addr string
}

func (c client) run(args ...string) result {
	c.t.Helper()
	return herald(c.t, opts{}, append(args, "--addr", c.addr)...)
}

func (c client) runIn(o opts, args ...string) result {
	c.t.Helper()
	return herald(c.t, o, append(args, "--addr", c.addr)...)
}

// ok runs a command that must succeed and returns its stdout.
func (c client) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("herald %s:\n%s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// okJSON runs a command with -o json and decodes its one JSON answer.
func okJSON[T any](c client, args ...string) T {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	return decodeOne[T](c.t, out)
}

// decodeOne decodes s, which must be exactly one JSON value on one line.
func decodeOne[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if strings.Count(strings.TrimSpace(s), "\n") != 0 {
		t.Fatalf("want one line of JSON, got:\n%s", s)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value: %q", s)
	}
	return v
}

// jsonLines decodes one JSON value per line.
func jsonLines[T any](t testing.TB, s string) []T {
	t.Helper()
	var out []T
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		out = append(out, decodeOne[T](t, l))
	}
	return out
}

// tableRows splits a table into rows of fields (header first).
func tableRows(s string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// startCluster starts n nodes on 127.0.0.1 in this process, closed when
// the test ends.
func startCluster(t *testing.T, n int, tweak func(*node.Config)) []*node.Node {
	t.Helper()
	nodes, err := node.StartLocalCluster(context.Background(), node.LocalCluster{Dir: t.TempDir(), Nodes: n, NoAuth: true, Logger: testutil.Quiet(), Tweak: tweak})
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// singleNode starts one node and returns a client for it.
func singleNode(t *testing.T) (*node.Node, client) {
	t.Helper()
	n := startCluster(t, 1, nil)[0]
	testutil.WaitFor(t, 20*time.Second, "the node leads", n.IsLeader)
	return n, client{t, "http://" + n.HTTPAddr()}
}

// notLeader returns a node that does not lead at this moment (it may by
// the time it is used: requests through it work either way).
func notLeader(t *testing.T, nodes []*node.Node) *node.Node {
	t.Helper()
	for _, n := range nodes {
		if !n.IsLeader() {
			return n
		}
	}
	t.Fatal("every node leads")
	return nil
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func status(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// receiver is a webhook endpoint on 127.0.0.1: it answers 204, or 500
// with a body while failing is set, and counts requests per webhook-id.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	failing bool
	got     map[string]int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.got[req.Header.Get("webhook-id")]++
		failing := r.failing
		r.mu.Unlock()
		if failing {
			w.Header().Set("X-Receiver", "failing")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "receiver says no")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r.srv.Listener.Close()
	r.srv.Listener = l
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) fail(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = on
}

func (r *receiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// wantUsage checks a usage error: exit 2, nothing on stdout, exactly the
// error line (containing want) and the pointer to the command's help.
func wantUsage(t *testing.T, r result, want, cmdPath string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code != 2 || r.stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "error: ") ||
		!strings.Contains(lines[0], want) || lines[1] != "Run '"+cmdPath+" -h' for usage." {
		t.Fatalf("want a usage error with %q and a pointer to %q -h:\n%s", want, cmdPath, r)
	}
}

// wantAPIError checks a failure: exit 1, nothing on stdout, one line
// "error: CODE: ...".
func wantAPIError(t *testing.T, r result, code string) {
	t.Helper()
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "error: "+code+": ") {
		t.Fatalf("want exit 1 with error: %s: ...:\n%s", code, r)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
