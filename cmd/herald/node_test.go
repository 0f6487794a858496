package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/bench"
	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// syncBuf is a goroutine-safe buffer for a command's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeDefaultsAndEnv runs herald with no command (then herald serve)
// with no flags in an empty directory, in this process (addresses moved
// to free ports through the variables, which also checks their mapping):
// it must say it serves a single node, bootstrap, serve, keep its node id
// and data in ./herald-data, and come back after a restart.
func TestServeDefaultsAndEnv(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("HERALD_HTTP", freeAddr(t))
	t.Setenv("HERALD_RAFT", freeAddr(t))
	t.Setenv("HERALD_LOG_LEVEL", "warn")
	serveOnce := func(args []string) string {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errOut := &syncBuf{}, &syncBuf{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, strings.NewReader(""), out, errOut) }()
		re := regexp.MustCompile(`serving http://(\S+)`)
		var addr string
		testutil.WaitFor(t, 20*time.Second, "serve prints its address", func() bool {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				addr = m[1]
			}
			return addr != ""
		})
		if addr != os.Getenv("HERALD_HTTP") {
			t.Fatalf("serving %s, want $HERALD_HTTP %s", addr, os.Getenv("HERALD_HTTP"))
		}
		testutil.WaitFor(t, 20*time.Second, "ready", func() bool { return status(addr, "/readyz") == 200 })
		if !strings.Contains(out.String(), "dashboard: http://"+addr+"/ui/") || status(addr, "/ui/") != 200 {
			t.Fatalf("the dashboard: GET /ui/ %d, serve said %q", status(addr, "/ui/"), out.String())
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
		return errOut.String()
	}
	if stderr := serveOnce(nil); !strings.HasPrefix(stderr, "herald: no command given, serving a single node (herald help lists the commands)\n") {
		t.Fatalf("no notice: %q", stderr)
	}
	id1, err := os.ReadFile(filepath.Join(dir, "herald-data", "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	if stderr := serveOnce([]string{"serve"}); strings.Contains(stderr, "no command given") {
		t.Fatalf("notice with a command: %q", stderr)
	}
	id2, _ := os.ReadFile(filepath.Join(dir, "herald-data", "node-id"))
	if string(id1) != string(id2) || !strings.HasPrefix(string(id1), "node-") {
		t.Fatalf("node id changed across restarts: %q -> %q", id1, id2)
	}
}

// TestServeFlagErrors: serve's checks of its flags, and Go-flag style
// single-dash flags (-data) still work as they did before cobra.
func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--http", "0.0.0.0:0", "--raft", "127.0.0.1:0", "--no-auth"}, 1, "--no-auth is only for an API on a loopback address"},
		{[]string{"--join-token", "hjt_x"}, 2, "--join-token goes with --join"},
		{[]string{"--join", "127.0.0.1:1", "--join-token", "hjt_secretvalue"}, 1, "--join-token: pki: malformed join token"},
		{[]string{"--raft-tls-cert", "c.pem"}, 2, "--raft-tls-cert and --raft-tls-key go together"},
		{[]string{"--tls-key", "k.pem"}, 2, "--tls-cert and --tls-key go together"},
		{[]string{"--raft-tls-cert", "/nonexistent/c.pem", "--raft-tls-key", "/nonexistent/k.pem", "--raft-tls-ca", "x"}, 1, "no such file"},
		{[]string{"--http", "127.0.0.1:0", "--raft", "0.0.0.0:0"}, 1, "set an advertise address"},
		{[]string{"-http", "127.0.0.1:0", "-raft=0.0.0.0:0", "-log-level", "warn"}, 1, "set an advertise address"},
		{[]string{"--snapshot-bytes", "0"}, 2, `for "--snapshot-bytes" flag: not a size`},
		{[]string{"--trailing-bytes", "lots"}, 2, `for "--trailing-bytes" flag: not a size`},
		{[]string{"--trailing-bytes", "64MB"}, 2, `for "--trailing-bytes" flag: not a size`},
	} {
		args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
		r := herald(t, opts{}, args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "error: ") != 1 {
			t.Fatalf("%v: want exit %d with %q:\n%s", tc.args, tc.code, tc.want, r)
		}
	}
}

func TestRecoverRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	peers := filepath.Join(dir, "peers.json")
	writeFile(t, peers, `[{"id":"n1","raft":"x"}]`)
	wantUsage(t, herald(t, opts{}, "recover"), "--data and --peers are required", "herald recover")
	wantUsage(t, herald(t, opts{}, "recover", "--data", dir), "--peers is required", "herald recover")
	for _, args := range [][]string{
		{"recover", "--data", dir, "--peers", peers},                              // unknown field
		{"recover", "--data", dir, "--peers", filepath.Join(dir, "missing.json")}, // no file
	} {
		if r := herald(t, opts{}, args...); r.code != 1 {
			t.Fatalf("%v:\n%s", args, r)
		}
	}
	writeFile(t, peers, `[{"id":"n1","raft_addr":"127.0.0.1:1"}]`)
	r := herald(t, opts{env: []string{"HERALD_DATA=" + dir, "HERALD_PEERS=" + peers}}, "recover")
	if r.code != 1 || !strings.Contains(r.stderr, "no Raft state") {
		t.Fatalf("recover on an empty dir:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "events.db")); err == nil {
		t.Fatal("a refused recover created an event log")
	}
}

// TestCompactCommand: herald compact shrinks a stopped node's event log
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
	r := herald(t, opts{}, "compact", "--data", dir)
	var before, after int64
	if _, err := fmt.Sscanf(r.stdout, "compacted "+path+": %d -> %d bytes\n", &before, &after); r.code != 0 || err != nil || after >= before/2 {
		t.Fatalf("not shrunk (%v):\n%s", err, r)
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
	wantUsage(t, herald(t, opts{}, "compact"), "--data is required", "herald compact")
	if r := herald(t, opts{}, "compact", "--data", t.TempDir()); r.code != 1 {
		t.Fatalf("compact of a dir without an event log:\n%s", r)
	}
}

// TestBenchCommand runs two short scenarios through the CLI (the duration
// through its variable): the table is printed, the JSON file holds one
// object per scenario, and an unknown scenario is refused.
func TestBenchCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	r := herald(t, opts{env: []string{"HERALD_BENCH_DURATION=300ms", "HERALD_BENCH_CLIENTS=2"}}, "bench", "--scenario", "publish,deliver", "--nodes", "1",
		"--subs", "2", "--deliveries", "100", "--payload", "32", "--json", out)
	if r.code != 0 || !strings.Contains(r.stdout, "deliveries/s") || !strings.Contains(r.stdout, "scenario") {
		t.Fatalf("bench:\n%s", r)
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
	if d := time.Duration(res[0]["duration_ns"].(float64)); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("publish ran %v: $HERALD_BENCH_DURATION=300ms not applied", d)
	}
	if r := herald(t, opts{}, "bench", "nope"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") {
		t.Fatalf("unknown scenario:\n%s", r)
	}
}

// TestDevCommand runs herald dev with HERALD_DEV_NODES=2: it prints each
// node's address and role, the nodes serve, and SIGINT stops them (exit 0)
// and removes the temporary data directory.
func TestDevCommand(t *testing.T) {
	cmd := exec.Command(heraldBin, "dev")
	cmd.Env = baseEnv([]string{"HERALD_DEV_NODES=2"})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 20)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	deadline := time.After(60 * time.Second)
	for len(got) == 0 || got[len(got)-1] != "Ctrl-C stops the cluster." {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev ended:\n%s\n%s", strings.Join(got, "\n"), stderr.String())
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("dev did not start within 60s:\n%s\n%s", strings.Join(got, "\n"), stderr.String())
		}
	}
	m := regexp.MustCompile(`^herald dev: 2-node cluster, data in (\S+)$`).FindStringSubmatch(got[0])
	if m == nil || len(got) != 6 {
		t.Fatalf("output:\n%s", strings.Join(got, "\n"))
	}
	dataDir := m[1]
	nodeLine := regexp.MustCompile(`^  (n[12])  (http://127\.0\.0\.1:\d+)  \(raft 127\.0\.0\.1:\d+, (leader|follower)\)$`)
	var addrs []string
	for i, l := range got[1:3] {
		m := nodeLine.FindStringSubmatch(l)
		if m == nil || m[1] != fmt.Sprintf("n%d", i+1) {
			t.Fatalf("node line %q", l)
		}
		addrs = append(addrs, m[2])
	}
	keyFile := filepath.Join(dataDir, "n1", "admin.key")
	if want := "try: HERALD_API_KEY=$(cat " + keyFile + ") herald publish demo store/order/created --data '{\"id\":1}' --addr " + addrs[1]; got[3] != want {
		t.Fatalf("try line %q, want %q", got[3], want)
	}
	if want := "webhooks may reach loopback receivers (127.0.0.0/8, ::1): herald serve allows them only with --delivery-allow"; got[4] != want {
		t.Fatalf("allow line %q, want %q", got[4], want)
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if r := herald(t, opts{}, "cluster", "status", "--addr", addrs[1]); r.code != 1 || !strings.Contains(r.stderr, "unauthorized") {
		t.Fatalf("dev without a key:\n%s", r)
	}
	r := herald(t, opts{env: []string{"HERALD_API_KEY=" + strings.TrimSpace(string(key))}}, "cluster", "status", "-o", "json", "--addr", addrs[1])
	if r.code != 0 {
		t.Fatalf("dev with its admin key:\n%s", r)
	}
	st := decodeOne[api.Cluster](t, r.stdout)
	if len(st.Nodes) != 2 || st.Leader == "" {
		t.Fatalf("dev cluster: %+v", st)
	}
	// As it says, dev delivers to a receiver on loopback.
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	c, err := api.NewClient(api.Config{Addresses: addrs, APIKey: strings.TrimSpace(string(key))})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.CreateSubscription(context.Background(), "demo", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.URL)}})
	if err != nil {
		t.Fatalf("dev refuses a loopback receiver: %v", err)
	}
	if d, err := c.TestSubscription(context.Background(), "demo", sub.ID); err != nil || d.Status != api.DeliverySucceeded {
		t.Fatalf("test event to a loopback receiver: %+v %v", d, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of SIGINT")
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("%s left behind (%v)", dataDir, err)
	}
}

// TestServeSnapshotBytes: --snapshot-bytes reaches raft. With 1MiB, a
// node that applies a few MiB of events takes a snapshot on its own
// (the default, 256MiB, would take none in this test: metadata
// snapshots are otherwise due every 8,192 entries).
func TestServeSnapshotBytes(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	errOut := &syncBuf{}
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--http", addr, "--raft", freeAddr(t), "--log-level", "warn",
			"--snapshot-bytes", "1MiB", "--trailing-bytes", "512KiB"}, strings.NewReader(""), &syncBuf{}, errOut)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errOut.String())
		}
	}()
	var key []byte
	testutil.WaitFor(t, 20*time.Second, "ready, with its first admin key", func() bool {
		key, _ = os.ReadFile(filepath.Join(dir, "admin.key"))
		return status(addr, "/readyz") == 200 && len(key) > 0
	})
	c, err := api.NewClient(api.Config{Addresses: []string{addr}, APIKey: strings.TrimSpace(string(key)), PublishWithoutData: true})
	if err != nil {
		t.Fatal(err)
	}
	data := json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	batch := make([]api.NewEvent, 100)
	for i := range batch {
		batch[i] = api.NewEvent{Type: "t", Data: data}
	}
	for range 30 { // ~3 MiB of events
		if _, err := c.PublishBatch(ctx, "s", batch); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "a snapshot by bytes", func() bool {
		n, _, err := bench.SnapshotStats(ctx, addr, strings.TrimSpace(string(key)))
		return err == nil && n > 0
	})
}
