package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// lastRelease is the last commit before API keys and the cluster PKI: its
// data dirs have plain-TCP Raft and no keys.
const lastRelease = "178d1d77ea7a3eaf8c346b938a680c7963784075"

// buildRelease builds herald at commit rev into dir.
func buildRelease(t *testing.T, rev string) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): cannot build the previous release", err)
	}
	if err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "cat-file", "-e", rev+"^{commit}").Run(); err != nil {
		t.Skipf("commit %s is not in this clone (shallow?): cannot build the previous release", rev[:12])
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("bash", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", strings.TrimSpace(string(top)), rev, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "herald-old")
	build := exec.Command("go", "build", "-o", bin, "./cmd/herald")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release: %v\n%s", err, out)
	}
	return bin
}

// TestRollingUpgradeFromLastRelease: a three-node cluster of the previous
// release (plain TCP Raft, no API keys) is upgraded one node at a time as
// docs/security.md says: a CA made once with herald cluster ca-create,
// copied into each data dir, then each node restarted on this version.
// The cluster keeps every acknowledged event, takes publishes while a
// majority is on one version, ends with Raft over TLS and auth on (the
// first admin key written by the new leader), refuses plain TCP Raft, and
// every node lists the same event types, counting the old release's
// events (each built its type index at its upgrade). The upgraded nodes
// stay on raft.db; then herald convert-log-store moves them to the WAL one
// at a time, and the cluster keeps every event.
func TestRollingUpgradeFromLastRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs herald processes")
	}
	old := buildRelease(t, lastRelease)
	c := newCluster(t, 3)
	for _, n := range c.nodes {
		n.bin = old
	}
	c.nodes[0].start()
	testutil.WaitFor(t, 20*time.Second, "n1 ready", func() bool { return ready(c.nodes[0].http) })
	for _, n := range c.nodes[1:] {
		n.join = c.nodes[0].http
		n.start()
	}
	testutil.WaitFor(t, 30*time.Second, "the old cluster formed", c.formed)

	// Event e<k> has seq k+1 (one publish at a time, a retry keeps the id)
	// and type t.<k mod 3>.
	published := 0
	publish := func(via *node) error {
		_, err := apiOf(via.http).Publish(context.Background(), "shop", api.NewEvent{ID: fmt.Sprintf("e%03d", published), Type: fmt.Sprintf("t.%d", published%3), Data: json.RawMessage(`{}`)})
		if err == nil {
			published++
		}
		return err
	}
	for i := 0; i < 20; i++ {
		if err := publish(c.leader()); err != nil {
			t.Fatalf("publish on the old cluster: %v", err)
		}
	}

	ca := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(heraldBin, "cluster", "ca-create", "--out", ca).CombinedOutput(); err != nil {
		t.Fatalf("ca-create: %v\n%s", err, out)
	}
	for _, n := range c.nodes {
		if err := os.MkdirAll(filepath.Join(n.dir, "tls"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"ca.crt", "ca.key"} {
			b, err := os.ReadFile(filepath.Join(ca, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(n.dir, "tls", f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Followers first, the leader last.
	l := c.leader()
	order := []*node{}
	for _, n := range c.nodes {
		if n != l {
			order = append(order, n)
		}
	}
	order = append(order, l)
	upgraded := 0
	for _, n := range order {
		n.term()
		n.bin = ""
		n.restart()
		upgraded++
		// While one version holds a majority, the cluster takes writes.
		var majority []*node
		for _, m := range c.nodes {
			if (m.bin == "") == (upgraded >= 2) {
				majority = append(majority, m)
			}
		}
		testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("a publish after upgrading %d node(s)", upgraded), func() bool {
			if upgraded >= 2 {
				// Auth is on now: the new leader wrote the first admin key.
				for _, m := range majority {
					if b, err := os.ReadFile(filepath.Join(m.dir, "admin.key")); err == nil {
						for _, x := range c.nodes {
							adminKeys.Store(x.http, strings.TrimSpace(string(b)))
						}
					}
				}
			}
			for _, m := range majority {
				if publish(m) == nil {
					return true
				}
			}
			return false
		})
	}
	testutil.WaitFor(t, 60*time.Second, "the upgraded cluster formed", c.formed)
	for i := 0; i < 10; i++ {
		if err := publish(c.leader()); err != nil {
			t.Fatalf("publish on the upgraded cluster: %v", err)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "every node holds every acknowledged event", func() bool {
		for _, n := range c.nodes {
			st, err := apiOf(n.http).Store(context.Background(), "shop", &api.QueryOptions{Consistency: api.ConsistencyLocal})
			if err != nil || st.LastSeq != uint64(published) {
				return false
			}
		}
		return true
	})
	// Every node built the type index from the events the old release
	// wrote (each at its own upgrade) and kept it since: all list the
	// same counts, of every event.
	var want []api.EventType
	for j := 0; j < 3; j++ {
		ty := api.EventType{Type: fmt.Sprintf("t.%d", j)}
		for k := j; k < published; k += 3 {
			ty.Count++
			ty.LastSeq = uint64(k + 1)
		}
		want = append(want, ty)
	}
	testutil.WaitFor(t, 30*time.Second, "every node lists the old and new events' types", func() bool {
		var first *api.StoreTypes
		for _, n := range c.nodes {
			st, err := apiOf(n.http).Types(context.Background(), "shop", &api.QueryOptions{Consistency: api.ConsistencyLocal})
			if err != nil || st.Truncated || len(st.Types) != len(want) {
				return false
			}
			for i, ty := range st.Types {
				if ty.Type != want[i].Type || ty.Count != want[i].Count || ty.LastSeq != want[i].LastSeq || ty.LastSeenAt.IsZero() {
					return false
				}
				if first != nil && !ty.LastSeenAt.Equal(first.Types[i].LastSeenAt) {
					return false
				}
			}
			if first == nil {
				first = st
			}
		}
		return true
	})
	// Auth is on, and no node speaks plain Raft any more.
	noKey, _ := api.NewClient(api.Config{Addresses: []string{c.nodes[0].http}, MaxRetries: -1})
	if _, err := noKey.Stores(context.Background(), nil); !api.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("without a key after the upgrade: %v", err)
	}
	for _, n := range c.nodes {
		for _, f := range []string{"node.crt", "node.key"} {
			if _, err := os.Stat(filepath.Join(n.dir, "tls", f)); err != nil {
				t.Errorf("%s: %v", n.id, err)
			}
		}
		// The upgraded data dir keeps its Raft log: raft.db, no wal/.
		if !onLogStore(n.dir, "bolt") {
			t.Errorf("%s: upgraded data dir not on raft.db alone", n.id)
		}
	}

	// Then each node moves to the WAL, one at a time, as docs/reliability.md
	// says: stop it, herald convert-log-store, start it. The cluster takes
	// writes throughout and keeps every event.
	order = order[:0]
	l = c.leader()
	for _, n := range c.nodes {
		if n != l {
			order = append(order, n)
		}
	}
	for i, n := range append(order, l) {
		n.term()
		out, err := exec.Command(heraldBin, "convert-log-store", "--data", n.dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "from bolt to wal: entries ") {
			t.Fatalf("convert %s: %v\n%s", n.id, err, out)
		}
		t.Logf("%s: %s", n.id, strings.SplitN(string(out), "\n", 2)[0])
		n.restart()
		testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("a publish after converting %d node(s)", i+1), func() bool {
			for _, m := range c.nodes {
				if m.running && publish(m) == nil {
					return true
				}
			}
			return false
		})
		if !onLogStore(n.dir, "wal") {
			t.Fatalf("%s: not on wal/ alone after the conversion", n.id)
		}
	}
	testutil.WaitFor(t, 60*time.Second, "the converted cluster formed", c.formed)
	testutil.WaitFor(t, 30*time.Second, "every converted node holds every acknowledged event", func() bool {
		for _, n := range c.nodes {
			st, err := apiOf(n.http).Store(context.Background(), "shop", &api.QueryOptions{Consistency: api.ConsistencyLocal})
			if err != nil || st.LastSeq != uint64(published) {
				return false
			}
		}
		return true
	})
}

// onLogStore reports whether the data dir holds the Raft log store kind
// ("bolt": raft.db, "wal": wal/) and not the other.
func onLogStore(dir, kind string) bool {
	_, boltErr := os.Stat(filepath.Join(dir, "raft.db"))
	_, walErr := os.Stat(filepath.Join(dir, "wal"))
	return (boltErr == nil) == (kind == "bolt") && (walErr == nil) == (kind == "wal")
}

// startOldSingleNode starts a one-node cluster of the previous release and
// waits until it is ready.
func startOldSingleNode(t *testing.T) *node {
	t.Helper()
	c := newCluster(t, 1)
	n := c.nodes[0]
	n.bin = buildRelease(t, lastRelease)
	n.start()
	testutil.WaitFor(t, 20*time.Second, "old node ready", func() bool { return ready(n.http) })
	return n
}

// TestSingleNodeUpgradeFromLastRelease: a single node of the previous
// release starts on this version without any step: it makes its CA and
// certificate (it is the cluster's only member) and its first admin key,
// keeps its events, and lists their types.
func TestSingleNodeUpgradeFromLastRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs herald processes")
	}
	n := startOldSingleNode(t)
	for i := 0; i < 5; i++ {
		if _, err := apiOf(n.http).Publish(context.Background(), "shop", api.NewEvent{Type: "t", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	n.term()
	n.bin = ""
	n.restart()
	adminKeys.Store(n.http, waitAdminKey(t, n.dir))
	testutil.WaitFor(t, 20*time.Second, "upgraded node ready", func() bool { return ready(n.http) })
	st, err := apiOf(n.http).Store(context.Background(), "shop", nil)
	if err != nil || st.LastSeq != 5 {
		t.Fatalf("after the upgrade: %+v %v", st, err)
	}
	// The type index, which the old release did not keep, was built from
	// its events.
	types, err := apiOf(n.http).Types(context.Background(), "shop", nil)
	if err != nil || types.Truncated || len(types.Types) != 1 || types.Types[0].Type != "t" || types.Types[0].Count != 5 || types.Types[0].LastSeq != 5 {
		t.Fatalf("types after the upgrade: %+v %v", types, err)
	}
	if !onLogStore(n.dir, "bolt") {
		t.Fatal("the upgraded node is not on raft.db alone")
	}
	if _, err := os.Stat(filepath.Join(n.dir, "tls", "ca.key")); err != nil {
		t.Fatal(err)
	}
}
