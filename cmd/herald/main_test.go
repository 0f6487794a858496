package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testcerts"
	hlog "github.com/herald-io/herald/log"
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--raft-tls-cert", "c.pem"}, "go together"},
		{[]string{"--tls-key", "k.pem"}, "go together"},
		{[]string{"--raft-tls-cert", "/nonexistent/c.pem", "--raft-tls-key", "/nonexistent/k.pem", "--raft-tls-ca", "x"}, "no such file"},
		{[]string{"--http", "127.0.0.1:0", "--raft", "0.0.0.0:0"}, "mutual TLS"},
	} {
		errOut.Reset()
		args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
		if code := run(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Fatalf("%v: %d %q, want %q", tc.args, code, errOut.String(), tc.want)
		}
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

// TestBackupRestoreRoundTrip backs up a three-node cluster through a
// follower, restores it into a new single node, and checks the stores and
// head hashes are the same and that seqs continue where they stopped.
func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nodes, err := node.StartLocalCluster(ctx, node.LocalCluster{Dir: t.TempDir(), Nodes: 3, Logger: quiet})
	for _, n := range nodes {
		defer n.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	leader := nodes[0]
	for _, n := range nodes {
		if n.IsLeader() {
			leader = n
		}
	}
	for i := 0; i < 25; i++ {
		for _, s := range []string{"shop-a", "plant-b"} {
			resp, err := http.Post("http://"+leader.HTTPAddr()+"/v1/stores/"+s+"/events", "application/json",
				strings.NewReader(fmt.Sprintf(`{"type":"t","data":{"i": %d}}`, i)))
			if err != nil || resp.StatusCode != 201 {
				t.Fatalf("publish: %v %v", err, resp)
			}
			resp.Body.Close()
		}
	}
	want, _ := leader.DB().Stores()
	// Back up through a node that has applied everything.
	var from *node.Node
	for _, n := range nodes {
		if n != leader {
			from = n
		}
	}
	waitFor(t, 10*time.Second, "follower caught up", func() bool {
		got, _ := from.DB().Stores()
		return len(got) == 2 && got[0] == want[0] && got[1] == want[1]
	})
	file := filepath.Join(t.TempDir(), "backup.db")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "--addr", from.HTTPAddr(), "--out", file}, &out, &errOut); code != 0 {
		t.Fatalf("backup: %s", errOut.String())
	}
	data := filepath.Join(t.TempDir(), "restored")
	if code := run([]string{"restore", "--data", data, "--from", file}, &out, &errOut); code != 0 {
		t.Fatalf("restore: %s", errOut.String())
	}
	if code := run([]string{"restore", "--data", data, "--from", file}, &out, &errOut); code == 0 {
		t.Fatal("restore into a used data dir succeeded")
	}

	cfg := node.Config{ID: "r1", DataDir: data, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Bootstrap: true, Logger: quiet}
	r, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitFor(t, 10*time.Second, "restored node leads", r.IsLeader)
	got, _ := r.DB().Stores()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("restored stores %+v, want %+v", got, want)
	}
	for _, s := range want {
		if err := r.DB().VerifyChain(s.Name); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post("http://"+r.HTTPAddr()+"/v1/stores/shop-a/events", "application/json", strings.NewReader(`{"type":"t","data":"after"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"seq":26`) {
		t.Fatalf("publish after restore: %d %s", resp.StatusCode, b)
	}
	// The old cluster's node addresses were dropped; the new node
	// registers itself.
	waitFor(t, 10*time.Second, "only r1 in the node table", func() bool {
		metas, _ := r.DB().Nodes()
		return len(metas) == 1 && metas[0].ID == "r1"
	})
}

func TestRecoverRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	peers := filepath.Join(dir, "peers.json")
	os.WriteFile(peers, []byte(`[{"id":"n1","raft":"x"}]`), 0o600)
	for _, args := range [][]string{
		{"recover"},
		{"recover", "--data", dir},
		{"recover", "--data", dir, "--peers", peers},                              // unknown field
		{"recover", "--data", dir, "--peers", filepath.Join(dir, "missing.json")}, // no file
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 1 {
			t.Fatalf("%v: exit %d, want 1 (%s)", args, code, errOut.String())
		}
	}
	os.WriteFile(peers, []byte(`[{"id":"n1","raft_addr":"127.0.0.1:1"}]`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"recover", "--data", dir, "--peers", peers}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no Raft state") {
		t.Fatalf("recover on an empty dir: %d %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "events.db")); err == nil {
		t.Fatal("a refused recover created an event log")
	}
}

// TestCLIOverHTTPS talks to a cluster serving HTTPS with a private CA:
// refused without --ca, fine with it.
func TestCLIOverHTTPS(t *testing.T) {
	ca, err := testcerts.NewCA("cli-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes, err := node.StartLocalCluster(context.Background(), node.LocalCluster{
		Dir: t.TempDir(), Nodes: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tweak: func(c *node.Config) {
			cfg, err := ca.Issue()
			if err != nil {
				t.Error(err)
				return
			}
			c.RaftTLS, c.HTTPTLS = cfg, cfg
		},
	})
	for _, n := range nodes {
		defer n.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	addr := "https://" + nodes[0].HTTPAddr()
	var out, errOut bytes.Buffer
	if code := run([]string{"cluster", "status", "--addr", addr}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "certificate") {
		t.Fatalf("without --ca: %d %s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"cluster", "status", "--addr", addr, "--ca", caFile}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"leader": "n1"`) {
		t.Fatalf("with --ca: %d %s %s", code, out.String(), errOut.String())
	}
	file := filepath.Join(t.TempDir(), "b.db")
	if code := run([]string{"backup", "--addr", addr, "--ca", caFile, "--out", file}, &out, &errOut); code != 0 {
		t.Fatalf("backup over HTTPS: %s", errOut.String())
	}
}

// TestBenchCommand runs two short scenarios through the CLI: the table is
// printed, the JSON file holds one object per scenario, and an unknown
// scenario is refused.
func TestBenchCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--scenario", "publish,deliver", "--nodes", "1", "--duration", "300ms", "--clients", "2",
		"--subs", "2", "--deliveries", "100", "--payload", "32", "--json", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "deliveries/s") || !strings.Contains(stdout.String(), "scenario") {
		t.Fatalf("no table:\n%s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res []map[string]any
	if err := json.Unmarshal(b, &res); err != nil || len(res) != 2 || res[0]["name"] != "publish" || res[1]["name"] != "deliver-2" {
		t.Fatalf("json: %v %s", err, b)
	}
	for _, k := range []string{"parameters", "events", "duration_ns", "throughput", "p50_ns", "p90_ns", "p99_ns", "max_ns", "errors", "duplicates", "lost"} {
		if _, ok := res[0][k]; !ok {
			t.Fatalf("json result lacks %q: %s", k, b)
		}
	}
	stdout.Reset()
	if code := run([]string{"bench", "--scenario", "nope"}, &stdout, &stderr); code == 0 {
		t.Fatal("unknown scenario accepted")
	}
}

// TestCompactCommand: `herald compact` shrinks a stopped node's event log
// after retention removed most of it, and keeps what is left intact.
func TestCompactCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	db, err := hlog.Open(path, hlog.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	for i := 0; i < 10; i++ {
		evs := make([]hlog.NewEvent, 100)
		for j := range evs {
			evs[j] = hlog.NewEvent{ID: fmt.Sprintf("e%d-%d", i, j), Type: "t", Version: "1", Timestamp: 1, Data: data}
		}
		if err := db.Update(func(tx *hlog.Tx) error { _, err := tx.Append("shop", evs); return err }); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var n uint64
		if err := db.Update(func(tx *hlog.Tx) error { var err error; n, err = tx.Compact("shop", 990); return err }); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	db.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"compact", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var before, after int64
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), ": ")+2:], "%d -> %d bytes", &before, &after); err != nil || after >= before/2 {
		t.Fatalf("not shrunk: %q (%v)", out.String(), err)
	}
	db, err = hlog.Open(path, hlog.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if si, err := db.Store("shop"); err != nil || si.FirstSeq != 991 || si.Events != 10 {
		t.Fatalf("after compact: %+v %v", si, err)
	}
	if err := db.VerifyChain("shop"); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"compact"}, &out, &errOut); code == 0 {
		t.Fatal("compact without --data accepted")
	}
}
