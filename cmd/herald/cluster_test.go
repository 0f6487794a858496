package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/netguard"
	"github.com/herald-io/herald/internal/testcerts"
	"github.com/herald-io/herald/internal/testutil"
	"github.com/herald-io/herald/node"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestThroughFollower runs the client commands against a three-node
// cluster through a node that did not lead when the test started (it may
// by the time a command runs: a follower relays to the leader, a leader
// answers itself), and through an address list whose first node is down.
func TestThroughFollower(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	c := client{t, "http://" + notLeader(t, nodes).HTTPAddr()}
	rcv := newReceiver(t)

	sub := okJSON[api.Subscription](c, "subs", "create", "shop", "--url", rcv.url())
	e := okJSON[api.Event](c, "publish", "shop", "store/order/created", "--data", `{"order":1}`, "--key", "k-1")
	if e.Seq != 1 {
		t.Fatalf("publish: %+v", e)
	}
	if r := tableRows(c.ok("publish", "shop", "store/order/created", "--key", "k-1")); r[1][1] != e.ID || r[1][6] != "duplicate" {
		t.Fatalf("duplicate through a follower: %q", r)
	}
	batch := "{\"type\":\"a\",\"id\":\"x1\"}\n{\"type\":\"b\",\"id\":\"x2\"}\n"
	if r := c.runIn(opts{stdin: batch}, "publish", "shop", "--batch", "-", "-o", "json"); r.code != 0 || len(jsonLines[api.Event](t, r.stdout)) != 2 {
		t.Fatalf("batch:\n%s", r)
	}
	if evs := jsonLines[api.Event](t, c.ok("events", "shop", "-o", "json")); len(evs) != 3 || evs[2].ID != "x2" {
		t.Fatalf("events: %+v", evs)
	}
	if s := okJSON[api.Store](c, "stores", "shop"); s.LastSeq != 3 {
		t.Fatalf("store: %+v", s)
	}
	testutil.WaitFor(t, 30*time.Second, "delivered through the leader", func() bool { return rcv.count("x2") == 1 })
	testutil.WaitFor(t, 30*time.Second, "recorded", func() bool {
		return hasDelivery(deliveriesOf(c, "shop", sub.ID, "succeeded"), "x2", api.DeliverySucceeded)
	})
	if l := okJSON[api.SubscriptionList](c, "subs", "list", "shop"); len(l.Subscriptions) != 1 || l.Subscriptions[0].ID != sub.ID {
		t.Fatalf("subs: %+v", l)
	}

	// The rest of the client commands, through the same node: writes are
	// relayed to (or forwarded as publishes to) the leader.
	if g := okJSON[api.Subscription](c, "subs", "get", "shop", sub.ID); g.ID != sub.ID || g.Secret != "" {
		t.Fatalf("subs get: %+v", g)
	}
	if u := okJSON[api.Subscription](c, "subs", "update", "shop", sub.ID, "--description", "via a follower"); u.Description != "via a follower" {
		t.Fatalf("subs update: %+v", u)
	}
	if p := okJSON[api.Subscription](c, "subs", "pause", "shop", sub.ID); p.Status != api.StatusPaused {
		t.Fatalf("subs pause: %+v", p)
	}
	if en := okJSON[api.Subscription](c, "subs", "enable", "shop", sub.ID); en.Status != api.StatusActive {
		t.Fatalf("subs enable: %+v", en)
	}
	if rot := okJSON[api.Subscription](c, "subs", "rotate", "shop", sub.ID, "--grace", "1h"); !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == sub.Secret {
		t.Fatalf("subs rotate: %+v", rot)
	}
	if d := okJSON[api.Delivery](c, "subs", "test", "shop", sub.ID); d.Status != api.DeliverySucceeded {
		t.Fatalf("subs test: %+v", d)
	}
	if ed := okJSON[api.EventDeliveries](c, "deliveries", "get", "shop", sub.ID, "x2"); ed.EventID != "x2" || len(ed.Attempts) == 0 {
		t.Fatalf("deliveries get: %+v", ed)
	}
	if rd := okJSON[api.Redelivery](c, "deliveries", "redeliver", "shop", sub.ID, "x1"); rd.EventID != "x1" || rd.Status != api.DeliveryPending {
		t.Fatalf("deliveries redeliver: %+v", rd)
	}
	if rp := okJSON[api.ReplayResult](c, "deliveries", "replay", "shop", sub.ID, "--from-seq", "3"); rp.FromSeq != 3 {
		t.Fatalf("deliveries replay: %+v", rp)
	}
	if sr := okJSON[api.StoreRetention](c, "stores", "set-retention", "shop", "--max-events", "1000"); sr.Retention == nil || sr.Retention.MaxEvents != 1000 {
		t.Fatalf("set-retention: %+v", sr)
	}
	if evs := jsonLines[api.Event](t, c.ok("events", "shop", "--follow", "--after", "2", "--limit", "1", "-o", "json")); len(evs) != 1 || evs[0].ID != "x2" {
		t.Fatalf("events --follow: %+v", evs)
	}
	if out := c.ok("subs", "delete", "shop", sub.ID, "-o", "json"); out != "" {
		t.Fatalf("subs delete printed %q", out)
	}
	wantAPIError(t, c.run("subs", "get", "shop", sub.ID), "not_found")

	// A list of addresses: the first is down, the next one answers.
	list := client{t, "http://" + freeAddr(t) + "," + c.addr}
	if s := okJSON[api.Store](list, "stores", "shop"); s.LastSeq != 3 {
		t.Fatalf("through a list: %+v", s)
	}
	if e := okJSON[api.Event](list, "publish", "shop", "t"); e.Seq != 4 {
		t.Fatalf("publish through a list: %+v", e)
	}
}

// TestClusterCommands: status (table, JSON, local view), transfer to a
// node and to any, join of a non-voter through the CLI, remove, and an
// unknown member.
func TestClusterCommands(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	f := notLeader(t, nodes)
	c := client{t, "http://" + f.HTTPAddr()}
	ids := []string{"n1", "n2", "n3"}

	st := okJSON[api.Cluster](c, "cluster", "status")
	leaders := 0
	for _, n := range st.Nodes {
		if !slices.Contains(ids, n.ID) || n.Suffrage != "voter" || n.RaftAddr == "" || n.HTTPAddr == "" {
			t.Fatalf("node %+v", n)
		}
		if n.State == api.StateLeader {
			leaders++
			if n.ID != st.Leader {
				t.Fatalf("leader %s, but %s is in state leader", st.Leader, n.ID)
			}
		}
	}
	if len(st.Nodes) != 3 || leaders != 1 || st.LeaderHTTPAddr == "" || st.CommitIndex == 0 {
		t.Fatalf("status: %+v", st)
	}
	out := c.ok("cluster", "status")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^leader n\d \(127\.0\.0\.1:\d+\); answered by n\d; commit index \d+, applied index \d+$`).MatchString(lines[0]) ||
		strings.Join(strings.Fields(lines[2]), " ") != "ID STATE SUFFRAGE RAFT_ADDR HTTP_ADDR" || len(lines) != 6 {
		t.Fatalf("status table:\n%s", out)
	}
	if local := okJSON[api.Cluster](c, "cluster", "status", "--consistency", "local"); local.ID != f.ID() || len(local.Nodes) != 3 {
		t.Fatalf("local view of %s: %+v", f.ID(), local)
	}

	// transfer to f, then to any voter.
	if tr := okJSON[api.TransferResult](c, "cluster", "transfer", f.ID()); tr.Leader != f.ID() {
		t.Fatalf("transfer to %s: %+v", f.ID(), tr)
	}
	testutil.WaitFor(t, 20*time.Second, f.ID()+" leads", f.IsLeader)
	out = c.ok("cluster", "transfer")
	m := regexp.MustCompile(`^leader is now (n\d)\n$`).FindStringSubmatch(out)
	if m == nil || !slices.Contains(ids, m[1]) {
		t.Fatalf("transfer to any: %q", out)
	}
	wantAPIError(t, c.run("cluster", "transfer", "n9"), "not_found")
	wantAPIError(t, c.run("cluster", "remove", "n9"), "not_found")

	// join: a node started without --join is added as a non-voter. It
	// needs a certificate of the cluster: the operator copied the CA into
	// its data dir (as for an upgrade), from which it issues its own.
	n4dir := t.TempDir()
	for _, f := range []string{"ca.crt", "ca.key"} {
		b, err := os.ReadFile(filepath.Join(nodes[0].DataDir(), node.TLSDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(n4dir, node.TLSDir), 0o700)
		writeFile(t, filepath.Join(n4dir, node.TLSDir, f), string(b))
	}
	n4, err := node.New(node.Config{ID: "n4", DataDir: n4dir, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", NonVoter: true, NoAuth: true, Logger: testutil.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n4.Open(); err != nil {
		t.Fatal(err)
	}
	defer n4.Close()
	jr := okJSON[api.JoinResult](c, "cluster", "join", "--id", "n4", "--raft-addr", n4.RaftAddr(), "--http-addr", n4.HTTPAddr(), "--non-voter")
	if jr.ID != "n4" || jr.Voter || jr.RaftAddr != n4.RaftAddr() || jr.HTTPAddr != n4.HTTPAddr() {
		t.Fatalf("join: %+v", jr)
	}
	testutil.WaitFor(t, 20*time.Second, "n4 in the cluster as a non-voter", func() bool {
		st := okJSON[api.Cluster](c, "cluster", "status")
		return len(st.Nodes) == 4 && slices.ContainsFunc(st.Nodes, func(n api.Node) bool { return n.ID == "n4" && n.Suffrage == "nonvoter" })
	})
	// Remove it (stopped first, so it cannot ask to come back).
	n4.Close()
	if out := c.ok("cluster", "remove", "n4"); out != "removed n4\n" {
		t.Fatalf("remove: %q", out)
	}
	if st := okJSON[api.Cluster](c, "cluster", "status"); len(st.Nodes) != 3 {
		t.Fatalf("after remove: %+v", st)
	}
}

// TestClusterRefusals: a single node is the leader for good: it refuses
// to remove itself and has no one to transfer to (409 conflict).
func TestClusterRefusals(t *testing.T) {
	n, c := singleNode(t)
	r := c.run("cluster", "remove", n.ID())
	wantAPIError(t, r, "conflict")
	wantAPIError(t, c.run("cluster", "transfer"), "conflict")
	if st := okJSON[api.Cluster](c, "cluster", "status"); st.Leader != n.ID() || len(st.Nodes) != 1 {
		t.Fatalf("status: %+v", st)
	}
}

// TestBackupRestoreRoundTrip backs up a three-node cluster through a
// follower, restores it into a new single node, and checks the stores and
// head hashes are the same and that seqs continue where they stopped.
func TestBackupRestoreRoundTrip(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.HTTPAddr())
	}
	ac, err := api.NewClient(api.Config{Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		for _, s := range []string{"shop-a", "plant-b"} {
			if _, err := ac.Publish(ctx, s, api.NewEvent{Type: "t", Data: []byte(fmt.Sprintf(`{"i": %d}`, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A subscription: its signing secret must be in the backup only
	// sealed, and must sign again after the restore.
	type request struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var signed []request
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		signed = append(signed, request{r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	sub, err := ac.CreateSubscription(ctx, "shop-a", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	// Back up through a node that has applied everything.
	from := notLeader(t, nodes)
	testutil.WaitFor(t, 20*time.Second, "the node caught up", func() bool {
		got, _ := from.DB().Stores()
		subs, _ := from.DB().Subscriptions("")
		return len(got) == 2 && got[0].LastSeq == 25 && got[1].LastSeq == 25 && len(subs) == 1
	})
	want, _ := from.DB().Stores()
	c := client{t, "http://" + from.HTTPAddr()}
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	out := c.ok("backup", "--out", file)
	st, err := os.Stat(file)
	if err != nil || out != fmt.Sprintf("wrote %s (%d bytes)\nits signing secrets are sealed: keep the cluster's secrets key (a node's DATA/secrets.key) apart from it; herald restore --secrets-key-file needs it\n", file, st.Size()) {
		t.Fatalf("backup: %q %v", out, err)
	}
	type backupResult struct {
		Out   string `json:"out"`
		Bytes int64  `json:"bytes"`
	}
	res := okJSON[backupResult](c, "backup", "--out", file+"2")
	if res.Out != file+"2" || res.Bytes == 0 {
		t.Fatalf("backup JSON: %+v", res)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("left behind in %s: %v", dir, ents)
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(sub.Secret)) || bytes.Contains(raw, []byte("whsec_")) {
		t.Fatal("the backup holds a signing secret in plain text")
	}

	data := filepath.Join(t.TempDir(), "restored")
	if r := herald(t, opts{}, "restore", "--data", data, "--from", file); r.code != 1 || !strings.Contains(r.stderr, "give --secrets-key-file") {
		t.Fatalf("restore without the secrets key:\n%s", r)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrong, []byte("hmk1_"+strings.Repeat("A", 43)+"=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := herald(t, opts{}, "restore", "--data", data, "--from", file, "--secrets-key-file", wrong); r.code != 1 || !strings.Contains(r.stderr, "does not open the backup's data key") {
		t.Fatalf("restore with another key:\n%s", r)
	}
	keyFile := filepath.Join(from.DataDir(), node.SecretsKeyFile)
	if r := herald(t, opts{}, "restore", "--data", data, "--from", file, "--secrets-key-file", keyFile); r.code != 0 || r.stdout != "restored "+file+" into "+data+"; start it with: herald serve --data "+data+"\n" {
		t.Fatalf("restore:\n%s", r)
	}
	if r := herald(t, opts{env: []string{"HERALD_DATA=" + data, "HERALD_FROM=" + file}}, "restore"); r.code != 1 || !strings.Contains(r.stderr, "already holds a node") {
		t.Fatalf("restore into a used data dir (through the variables):\n%s", r)
	}

	r1, err := node.New(node.Config{ID: "r1", DataDir: data, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", Bootstrap: true, NoAuth: true, Logger: testutil.Quiet(),
		DeliveryAllow: netguard.Loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Open(); err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	testutil.WaitFor(t, 20*time.Second, "restored node leads", r1.IsLeader)
	got, _ := r1.DB().Stores()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("restored stores %+v, want %+v", got, want)
	}
	for _, s := range want {
		if err := r1.DB().VerifyChain(s.Name); err != nil {
			t.Fatal(err)
		}
	}
	// The restored node opens the sealed secret and signs with it.
	rac, err := api.NewClient(api.Config{Addresses: []string{r1.HTTPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := rac.TestSubscription(ctx, "shop-a", sub.ID); err != nil || d.Status != api.DeliverySucceeded {
		t.Fatalf("test event after the restore: %+v %v", d, err)
	}
	mu.Lock()
	last := signed[len(signed)-1]
	mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(sub.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(last.body, last.header); err != nil {
		t.Fatalf("the restored node's signature does not verify with the secret from before: %v", err)
	}
	rc := client{t, "http://" + r1.HTTPAddr()}
	if e := okJSON[api.Event](rc, "publish", "shop-a", "t", "--data", `"after"`); e.Seq != 26 {
		t.Fatalf("publish after restore: %+v", e)
	}
	// The old cluster's node addresses were dropped; the new node
	// registers itself.
	testutil.WaitFor(t, 20*time.Second, "only r1 in the node table", func() bool {
		metas, _ := r1.DB().Nodes()
		return len(metas) == 1 && metas[0].ID == "r1"
	})
	// A backup from a node that is not there leaves nothing behind.
	bad := filepath.Join(t.TempDir(), "b.db")
	if r := herald(t, opts{}, "backup", "--out", bad, "--addr", "http://"+freeAddr(t)); r.code != 1 {
		t.Fatalf("backup from nowhere:\n%s", r)
	}
	if ents, _ := os.ReadDir(filepath.Dir(bad)); len(ents) != 0 {
		t.Fatalf("a failed backup left %v", ents)
	}
}

// TestCLIOverHTTPS talks to a node serving HTTPS with a private CA:
// refused without --ca, fine with it (flag or variable).
func TestCLIOverHTTPS(t *testing.T) {
	ca, err := testcerts.NewCA("cli-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(ca.PEM()))
	nodes := startCluster(t, 1, func(c *node.Config) {
		cfg, err := ca.Issue()
		if err != nil {
			t.Error(err)
			return
		}
		c.RaftTLS, c.HTTPTLS = cfg, cfg
	})
	addr := "https://" + nodes[0].HTTPAddr()
	r := herald(t, opts{}, "cluster", "status", "--addr", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without --ca:\n%s", r)
	}
	st := decodeOne[api.Cluster](t, herald(t, opts{}, "cluster", "status", "--addr", addr, "--ca", caFile, "-o", "json").stdout)
	if st.Leader != "n1" {
		t.Fatalf("with --ca: %+v", st)
	}
	r = herald(t, opts{env: []string{"HERALD_CA=" + caFile, "HERALD_ADDR=" + addr}}, "publish", "s", "t")
	if r.code != 0 || tableRows(r.stdout)[1][0] != "1" {
		t.Fatalf("with $HERALD_CA:\n%s", r)
	}
	file := filepath.Join(t.TempDir(), "b.db")
	if r := herald(t, opts{}, "backup", "--addr", addr, "--ca", caFile, "--out", file); r.code != 0 {
		t.Fatalf("backup over HTTPS:\n%s", r)
	}
}

// fakeNode answers like a node and records the requests' headers.
type fakeNode struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/stores" {
			fmt.Fprint(w, `{"stores":[{"store":"fake","first_seq":1,"last_seq":7,"head_hash":"ab","events":7}]}`)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"code":"internal","message":"boom"}}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) requests() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// TestConnectionFlags: the User-Agent, the API key as a bearer token
// (never in an error message), HERALD_ADDR, and a flag winning over its
// variable.
func TestConnectionFlags(t *testing.T) {
	f := newFakeNode(t)
	r := herald(t, opts{env: []string{"HERALD_ADDR=" + f.srv.URL}}, "stores", "--api-key", "k-secret-123", "-o", "json")
	if r.code != 0 || decodeOne[api.StoreList](t, r.stdout).Stores[0].LastSeq != 7 {
		t.Fatalf("stores through $HERALD_ADDR:\n%s", r)
	}
	h := f.requests()[0]
	if h.Get("User-Agent") != "herald-cli/test-version" || h.Get("Authorization") != "Bearer k-secret-123" {
		t.Fatalf("headers: %v", h)
	}
	// The flag wins over the variable; the key from its variable; an
	// error answer.
	r = herald(t, opts{env: []string{"HERALD_ADDR=http://" + freeAddr(t), "HERALD_API_KEY=k-secret-456"}}, "stores", "x", "--addr", f.srv.URL)
	if r.stderr != "error: internal: boom\n" || r.code != 1 || strings.Contains(r.stdout+r.stderr, "k-secret") {
		t.Fatalf("error answer:\n%s", r)
	}
	if got := f.requests(); len(got) != 2 || got[1].Get("Authorization") != "Bearer k-secret-456" {
		t.Fatalf("requests: %v", got)
	}
	// HERALD_OUTPUT applies like -o.
	r = herald(t, opts{env: []string{"HERALD_OUTPUT=json"}}, "stores", "--addr", f.srv.URL)
	if r.code != 0 || decodeOne[api.StoreList](t, r.stdout).Stores[0].Store != "fake" {
		t.Fatalf("$HERALD_OUTPUT:\n%s", r)
	}
	// A node that does not answer in --request-timeout.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	defer hang.CloseClientConnections()
	start := time.Now()
	r = herald(t, opts{}, "stores", "--addr", hang.URL, "--request-timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "deadline exceeded") || time.Since(start) > 30*time.Second {
		t.Fatalf("--request-timeout:\n%s", r)
	}
}
