package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/node"
)

// syncBuf is a goroutine-safe buffer for a command's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "herald ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"bogus"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("bogus: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"serve", "--bootstrap", "--join", "x:1"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "exclusive") {
		t.Fatalf("bootstrap+join: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"serve", "--http", "0.0.0.0:0", "--raft", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--insecure") {
		t.Fatalf("non-loopback without --insecure: %d %q", code, errOut.String())
	}
}

// TestServeDefaultsAndEnv runs `herald serve` with no flags in an empty
// directory (addresses moved to free ports through the environment, which
// also checks the env mapping): it must bootstrap, serve, keep its node id
// and data in ./herald-data, and come back after a restart.
func TestServeDefaultsAndEnv(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("HERALD_HTTP", freeAddr(t))
	t.Setenv("HERALD_RAFT", freeAddr(t))
	t.Setenv("HERALD_LOG_LEVEL", "warn")
	serveOnce := func() {
		ctx, cancel := context.WithCancel(context.Background())
		out, errOut := &syncBuf{}, &syncBuf{}
		done := make(chan int, 1)
		go func() { done <- run2(ctx, nil, out, errOut) }()
		re := regexp.MustCompile(`serving http://(\S+)`)
		var addr string
		waitFor(t, 15*time.Second, "serve prints its address", func() bool {
			m := re.FindStringSubmatch(out.String())
			if m != nil {
				addr = m[1]
			}
			return addr != ""
		})
		waitFor(t, 15*time.Second, "ready", func() bool { return status(addr, "/readyz") == 200 })
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
	}
	serveOnce()
	id1, err := os.ReadFile(filepath.Join(dir, "herald-data", "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	serveOnce()
	id2, _ := os.ReadFile(filepath.Join(dir, "herald-data", "node-id"))
	if string(id1) != string(id2) || !strings.HasPrefix(string(id1), "node-") {
		t.Fatalf("node id changed across restarts: %q -> %q", id1, id2)
	}
}

// run2 is run with an explicit context (run itself listens for signals).
func run2(ctx context.Context, args []string, stdout, stderr *syncBuf) int {
	if err := runServe(ctx, args, stdout, stderr); err != nil {
		stderr.Write([]byte(err.Error()))
		return 1
	}
	return 0
}

func TestClusterCommands(t *testing.T) {
	ctx := context.Background()
	nodes, err := node.StartLocalCluster(ctx, node.LocalCluster{Dir: t.TempDir(), Nodes: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, n := range nodes {
		defer n.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	var follower *node.Node
	for _, n := range nodes {
		if !n.IsLeader() {
			follower = n
		}
	}
	cli := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"cluster"}, args...), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	out, code := cli("status", "--addr", follower.HTTPAddr())
	if code != 0 || !strings.Contains(out, `"leader"`) || strings.Count(out, `"suffrage": "voter"`) != 3 {
		t.Fatalf("status: %d %s", code, out)
	}
	out, code = cli("transfer", "--addr", follower.HTTPAddr(), "--to", follower.ID())
	if code != 0 || !strings.Contains(out, follower.ID()) {
		t.Fatalf("transfer: %d %s", code, out)
	}
	waitFor(t, 10*time.Second, "follower leads", follower.IsLeader)
	out, code = cli("remove", "--addr", follower.HTTPAddr(), "--id", follower.ID())
	if code != 1 || !strings.Contains(out, "conflict") {
		t.Fatalf("removing the leader: %d %s", code, out)
	}
	out, code = cli("join", "--addr", follower.HTTPAddr())
	if code != 1 || !strings.Contains(out, "needs --id") {
		t.Fatalf("join without flags: %d %s", code, out)
	}
	if _, code = cli("bogus"); code != 1 {
		t.Fatalf("bogus subcommand exit %d", code)
	}
}
