package node

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// verifyingReceiver checks every request's signature with the secret it
// is told, and counts the requests that verify and those that do not.
type verifyingReceiver struct {
	mu          sync.Mutex
	wh          *standardwebhooks.Webhook
	good, bad   int
	lastBadText string
	srv         *httptest.Server
}

func newVerifyingReceiver(t *testing.T) *verifyingReceiver {
	r := &verifyingReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.wh == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := r.wh.Verify(body, req.Header); err != nil {
			r.bad++
			r.lastBadText = err.Error()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.good++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *verifyingReceiver) secret(t *testing.T, s string) {
	wh, err := standardwebhooks.NewWebhook(s)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.wh = wh
	r.mu.Unlock()
}

func (r *verifyingReceiver) counts() (good, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.good, r.bad
}

// filesContaining lists the files under dir that hold needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, needle) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSecretsAtRest: a subscription's signing secret, given or generated,
// and a rotated one, never appear in any file of any node (event log,
// Raft log, snapshots); deliveries are signed with them on every leader;
// herald secrets rotate-key re-seals them under a new data key without a
// pause in delivery.
func TestSecretsAtRest(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	l := leaderOf(t, nodes)
	c := clientOf(t, l)
	ctx := context.Background()
	recv := newVerifyingReceiver(t)

	const given = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1zdG9yZWQ="
	recv.secret(t, given)
	sub, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}, Secret: api.Ptr(given)})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Secret != given {
		t.Fatalf("create shows secret %q", sub.Secret)
	}
	publishN := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := clientOf(t, leaderOf(t, nodes)).Publish(ctx, "shop", api.NewEvent{Type: "order.created", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitGood := func(want int) {
		t.Helper()
		waitFor(t, 30*time.Second, "deliveries that verify", func() bool { good, _ := recv.counts(); return good >= want })
		if _, bad := recv.counts(); bad != 0 {
			t.Fatalf("%d deliveries failed verification: %s", bad, recv.lastBadText)
		}
	}
	publishN(5)
	waitGood(5)

	rotated, err := c.RotateSecret(ctx, "shop", sub.ID, api.RotateSecret{Grace: "0s"})
	if err != nil {
		t.Fatal(err)
	}
	recv.secret(t, rotated.Secret)
	publishN(5)
	waitGood(10)

	// Data key rotation: every secret re-sealed under key 2; delivery
	// goes on, and on another leader too.
	rot, err := c.RotateSecretsKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rot.KeyID != 2 || rot.Resealed != 1 || len(rot.MasterKey) != 16 {
		t.Fatalf("rotation: %+v", rot)
	}
	stored, err := l.DB().Subscription(sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := secrets.Parse(stored.Secrets[0].Key); err != nil || p.KeyID != 2 {
		t.Fatalf("stored secret after rotate-key: %.12q %v", stored.Secrets[0].Key, err)
	}
	if _, err := l.TransferLeader(ctx, ""); err != nil {
		t.Fatal(err)
	}
	publishN(5)
	waitGood(15)

	for _, n := range nodes {
		if err := n.raft.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
	}
	for _, s := range []string{given, rotated.Secret} {
		raw := strings.TrimPrefix(s, "whsec_")
		for _, n := range nodes {
			if got := filesContaining(t, n.DataDir(), []byte(raw)); len(got) > 0 {
				t.Fatalf("a signing secret in plain text in %v", got)
			}
		}
	}
}

// TestPlaintextSecretsAreResealed: secrets stored in plain text (by a
// release before encryption) keep signing, and the leader re-seals them.
func TestPlaintextSecretsAreResealed(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	recv := newVerifyingReceiver(t)
	const plain = "whsec_b2xkLXJlbGVhc2UtcGxhaW50ZXh0LXNlY3JldA=="
	recv.secret(t, plain)
	// What an older release committed: the secret as it is.
	s := hlog.Subscription{ID: "sub_old", Store: "shop", URL: recv.srv.URL}
	s.ApplyDefaults()
	s.Secrets = []hlog.Secret{{Key: plain}}
	if _, err := n.raft.CreateSubscription(&s, 0); err != nil {
		t.Fatal(err)
	}
	n.secrets.migrated.Store(false)
	waitFor(t, 10*time.Second, "the plaintext secret re-sealed", func() bool {
		got, err := n.DB().Subscription("sub_old")
		return err == nil && secrets.IsSealed(got.Secrets[0].Key)
	})
	if _, err := clientOf(t, n).Publish(context.Background(), "shop", api.NewEvent{Type: "t", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a delivery that verifies", func() bool { good, _ := recv.counts(); return good >= 1 })
	if _, bad := recv.counts(); bad != 0 {
		t.Fatalf("deliveries failed verification: %s", recv.lastBadText)
	}
}

// TestWrongSecretsKeyIsReported: a node whose master key is not the
// cluster's cannot open the data keys; it says so and signs nothing
// (the deliveries wait, none is dropped).
func TestWrongSecretsKeyIsReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	cfg := fastConfig("n1", dir)
	cfg.Bootstrap = true
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	if err := n.ensureDataKey(); err != nil {
		t.Fatal(err)
	}
	n.stop()
	other, _ := secrets.NewMasterKey()
	if err := secrets.WriteKeyFile(filepath.Join(dir, SecretsKeyFile), other); err != nil {
		t.Fatal(err)
	}
	n.restart()
	if !n.secrets.warned.Load() {
		t.Fatal("a wrong master key went unreported")
	}
	if _, err := n.openSealed("sub_x", "secret", "hsec1."+strings.Repeat("A", 80)); err == nil {
		t.Fatal("opened a secret under an unknown key")
	}
}

// TestSensitiveHeaders: a header marked sensitive reaches the receiver,
// is sealed in every file, shown as set but empty, elided in the delivery
// log, kept when a patch sends it empty, and re-sealed by rotate-key.
func TestSensitiveHeaders(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	c := clientOf(t, leaderOf(t, nodes))
	ctx := context.Background()
	const token = "Bearer t0p-s3cret-receiver-credential"
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Team"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	received := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }

	// A sensitive header needs a value when it is new.
	_, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.URL),
		Headers: &map[string]string{"Authorization": ""}, SensitiveHeaders: &[]string{"Authorization"}}})
	if apiCode(err) != api.CodeInvalidSubscription {
		t.Fatalf("a sensitive header without a value: %v", err)
	}
	sub, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.URL),
		Headers: &map[string]string{"Authorization": token, "X-Team": "a"}, SensitiveHeaders: &[]string{"authorization"}}})
	if err != nil {
		t.Fatal(err)
	}
	show, err := c.Subscription(ctx, "shop", sub.ID, nil)
	if err != nil || show.Headers["Authorization"] != "" || show.Headers["X-Team"] != "a" || len(show.SensitiveHeaders) != 1 {
		t.Fatalf("GET: %+v %v", show, err)
	}
	if d, err := c.TestSubscription(ctx, "shop", sub.ID); err != nil || d.Status != api.DeliverySucceeded || d.RequestHeaders["authorization"] != "(elided)" {
		t.Fatalf("test event: %+v %v", d, err)
	}
	if _, err := c.Publish(ctx, "shop", api.NewEvent{Type: "t", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the delivery", func() bool { return len(received()) >= 2 })
	for _, g := range received() {
		if g != token+"|a" {
			t.Fatalf("the receiver got %q", g)
		}
	}
	var page *api.DeliveryPage
	waitFor(t, 10*time.Second, "the attempt in the delivery log", func() bool {
		page, err = c.Deliveries(ctx, "shop", sub.ID, api.DeliveryQuery{})
		return err == nil && len(page.Deliveries) > 0
	})
	if h := page.Deliveries[0].RequestHeaders["authorization"]; h != "(elided)" {
		t.Fatalf("delivery log shows authorization %q", h)
	}

	// A patch that sends it empty keeps it; another header changes.
	if _, err := c.UpdateSubscription(ctx, "shop", sub.ID, api.SubscriptionPatch{
		Headers: &map[string]string{"Authorization": "", "X-Team": "b"}, SensitiveHeaders: &[]string{"Authorization"}}); err != nil {
		t.Fatal(err)
	}
	// A GET's headers sent back alone keep the sensitive one as it is.
	show, err = c.Subscription(ctx, "shop", sub.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSubscription(ctx, "shop", sub.ID, api.SubscriptionPatch{Headers: &show.Headers}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateSecretsKey(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := c.TestSubscription(ctx, "shop", sub.ID); err != nil || d.Status != api.DeliverySucceeded {
		t.Fatalf("test event after the patch and rotate-key: %+v %v", d, err)
	}
	if last := received()[len(received())-1]; last != token+"|b" {
		t.Fatalf("after the patch the receiver got %q", last)
	}
	for _, n := range nodes {
		if err := n.raft.Snapshot(); err != nil {
			t.Fatal(err)
		}
		if files := filesContaining(t, n.DataDir(), []byte("t0p-s3cret")); len(files) > 0 {
			t.Fatalf("the credential in plain text in %v", files)
		}
	}
}

// TestJoinerReceivesSecretsKey: a joining node gets the cluster's master
// key with its certificate, also when that key is not the one derived
// from the cluster's CA (a restored cluster keeps the old cluster's key,
// under a new CA), and can then open the secrets as leader.
func TestJoinerReceivesSecretsKey(t *testing.T) {
	base := t.TempDir()
	own, _ := secrets.NewMasterKey() // as herald restore --secrets-key-file leaves it
	if err := os.MkdirAll(filepath.Join(base, "n1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := secrets.WriteKeyFile(filepath.Join(base, "n1", SecretsKeyFile), own); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig("n1", filepath.Join(base, "n1"))
	cfg.Bootstrap = true
	n1 := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n1.IsLeader)
	recv := newVerifyingReceiver(t)
	c := clientOf(t, n1)
	sub, err := c.CreateSubscription(context.Background(), "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	recv.secret(t, sub.Secret)

	cfg2 := fastConfig("n2", filepath.Join(base, "n2"))
	cfg2.Join = []string{n1.HTTPAddr()}
	cfg2.JoinToken = joinToken(t, []*testNode{n1})
	n2 := mustStart(t, cfg2)
	got, err := secrets.ReadKeyFile(filepath.Join(base, "n2", SecretsKeyFile))
	if err != nil || got != own {
		t.Fatalf("the joiner's secrets key: %s (want %s) %v", got.Fingerprint(), own.Fingerprint(), err)
	}
	waitFor(t, 20*time.Second, "n2 a voter", func() bool { return n1.raft.Voters() == 2 })
	if _, err := n1.TransferLeader(context.Background(), "n2"); err != nil {
		t.Fatal(err)
	}
	if d, err := clientOf(t, n2).TestSubscription(context.Background(), "shop", sub.ID); err != nil || d.Status != api.DeliverySucceeded {
		t.Fatalf("test event from the joiner as leader: %+v %v", d, err)
	}
	if good, bad := recv.counts(); good != 1 || bad != 0 {
		t.Fatalf("verified %d, failed %d", good, bad)
	}
}
