package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/pki"
)

// authCluster starts three nodes with authentication on and returns them
// with the admin key the first start wrote.
func authCluster(t *testing.T) ([]*testNode, string) {
	t.Helper()
	nodes := mustStartCluster(t, 3, func(c *Config) { c.NoAuth = false })
	var key string
	waitFor(t, 10*time.Second, "the first admin key", func() bool {
		for _, n := range nodes {
			b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, AdminKeyFile))
			if err == nil {
				key = strings.TrimSpace(string(b))
				return true
			}
		}
		return false
	})
	return nodes, key
}

func keyClient(t *testing.T, addr, key string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Addresses: []string{addr}, APIKey: key, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawStatus(t *testing.T, method, url, key, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 401 || resp.StatusCode == 403 {
		if !bytes.Contains(b, []byte(`"code":"unauthorized"`)) && !bytes.Contains(b, []byte(`"code":"forbidden"`)) {
			t.Errorf("%s %s: %d without the JSON error: %s", method, url, resp.StatusCode, b)
		}
		if key != "" && bytes.Contains(b, []byte(key)) {
			t.Errorf("%s %s: the answer repeats the key", method, url)
		}
	}
	return resp.StatusCode
}

// TestAuthMatrix: every route × {no key, unknown key, wrong store, missing
// action, revoked, expired, admin}, through the leader and through a
// follower.
func TestAuthMatrix(t *testing.T) {
	nodes, admin := authCluster(t)
	leader := leaderOf(t, nodes)
	ac := keyClient(t, leader.HTTPAddr(), admin)
	ctx := context.Background()
	res, err := ac.Publish(ctx, "shop-1", api.NewEvent{Type: "store/order/created", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	evt := res.Events[0].ID
	url := "http://127.0.0.1:9/hook"
	sub, err := ac.CreateSubscription(ctx, "shop-1", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: &url}})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(name string, stores []string, actions ...api.Action) string {
		k, err := ac.CreateKey(ctx, api.KeyRequest{Name: name, Grants: []api.Grant{{Stores: stores, Actions: actions}}})
		if err != nil {
			t.Fatal(err)
		}
		return k.Key
	}
	all := api.Actions()
	wrongStore := grant("other", []string{"other", "shop-2*"}, all...)
	everything := grant("everything", []string{"*"}, all...)
	without := map[api.Action]string{}
	for _, a := range all {
		var rest []api.Action
		for _, b := range all {
			if b != a {
				rest = append(rest, b)
			}
		}
		without[a] = grant("no-"+string(a), []string{"shop-1"}, rest...)
	}
	revoked := grant("revoked", []string{"shop-1"}, all...)
	if err := ac.RevokeKey(ctx, keyID(t, ac, "revoked")); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(1500 * time.Millisecond)
	ek, err := ac.CreateKey(ctx, api.KeyRequest{Name: "expiring", Grants: []api.Grant{{Stores: []string{"shop-1"}, Actions: all}}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	var unknown [32]byte
	rand.Read(unknown[:])
	unknownKey := api.KeyPrefix + base64.RawURLEncoding.EncodeToString(unknown[:])

	s := "/v1/stores/shop-1/subscriptions/" + sub.ID
	type route struct {
		method, path, body string
		need               api.Action // "" with admin: admin only; "" without: any key
		admin, open        bool
	}
	routes := []route{
		{method: "GET", path: "/healthz", open: true},
		{method: "GET", path: "/readyz", open: true},
		{method: "GET", path: "/v1/cluster/hello", open: true},
		{method: "GET", path: "/v1/openapi.json"},
		{method: "GET", path: "/v1/stores"},
		{method: "GET", path: "/v1/stores/shop-1", need: api.ActionRead},
		{method: "GET", path: "/v1/stores/shop-1/types", need: api.ActionRead},
		{method: "PUT", path: "/v1/stores/shop-1", body: `{"retention":{"max_events":1000}}`, admin: true},
		{method: "POST", path: "/v1/stores/shop-1/events", body: `{"type":"t","data":1}`, need: api.ActionPublish},
		{method: "GET", path: "/v1/stores/shop-1/events", need: api.ActionRead},
		{method: "GET", path: "/v1/stores/shop-1/events/" + evt, need: api.ActionRead},
		{method: "POST", path: "/v1/stores/shop-1/subscriptions", body: `{"url":"http://127.0.0.1:9/x"}`, need: api.ActionSubscriptions},
		{method: "GET", path: "/v1/stores/shop-1/subscriptions", need: api.ActionSubscriptions},
		{method: "GET", path: s, need: api.ActionSubscriptions},
		{method: "PATCH", path: s, body: `{"description":"x"}`, need: api.ActionSubscriptions},
		{method: "POST", path: s + "/pause", need: api.ActionSubscriptions},
		{method: "POST", path: s + "/enable", need: api.ActionSubscriptions},
		{method: "POST", path: s + "/secret/rotate", body: `{"grace":"1h"}`, need: api.ActionSubscriptions},
		{method: "POST", path: s + "/test", need: api.ActionSubscriptions},
		{method: "POST", path: s + "/replay", body: `{"from_seq":1}`, need: api.ActionSubscriptions},
		{method: "GET", path: s + "/deliveries", need: api.ActionSubscriptions},
		{method: "GET", path: s + "/deliveries/" + evt, need: api.ActionSubscriptions},
		{method: "POST", path: s + "/deliveries/" + evt + "/redeliver", need: api.ActionSubscriptions},
		{method: "DELETE", path: "/v1/stores/shop-1/subscriptions/sub_none", need: api.ActionSubscriptions},
		{method: "GET", path: "/v1/cluster", admin: true},
		{method: "POST", path: "/v1/cluster/nodes", body: `{"id":"x"}`, admin: true},
		{method: "DELETE", path: "/v1/cluster/nodes/n9", admin: true},
		{method: "POST", path: "/v1/cluster/leader/transfer", body: `{"to":"n9"}`, admin: true},
		{method: "POST", path: "/v1/cluster/tokens", body: `{"ttl":"1m"}`, admin: true},
		{method: "POST", path: "/v1/keys", body: `{"name":"x","admin":true}`, admin: true},
		{method: "GET", path: "/v1/keys", admin: true},
		{method: "GET", path: "/v1/keys/key_none", admin: true},
		{method: "DELETE", path: "/v1/keys/key_none", admin: true},
		{method: "GET", path: "/v1/backup", admin: true},
	}
	// The expiring key works until it expires, then never again.
	if st := rawStatus(t, "GET", "http://"+leader.HTTPAddr()+"/v1/stores/shop-1", ek.Key, ""); st != 200 {
		t.Fatalf("expiring key before expiry: %d", st)
	}
	waitFor(t, 10*time.Second, "the key expired", func() bool {
		return rawStatus(t, "GET", "http://"+leader.HTTPAddr()+"/v1/stores/shop-1", ek.Key, "") == 401
	})

	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	for _, via := range []*testNode{leader, follower} {
		base := "http://" + via.HTTPAddr()
		for _, r := range routes {
			keyFor := map[string]string{"none": "", "unknown": unknownKey, "revoked": revoked, "expired": ek.Key, "wrong store": wrongStore}
			if r.need != "" {
				keyFor["missing action"] = without[r.need]
			} else {
				keyFor["missing action"] = everything // all actions on every store, not admin
			}
			for who, key := range keyFor {
				want := 0
				switch {
				case r.open:
					want = 200
				case who == "none" || who == "unknown" || who == "revoked" || who == "expired":
					want = 401
				case r.admin || r.need != "":
					want = 403
				default:
					want = 200 // any key
				}
				if got := rawStatus(t, r.method, base+r.path, key, r.body); got != want {
					t.Errorf("via %s: %s %s with %s key: %d, want %d", via.ID(), r.method, r.path, who, got, want)
				}
			}
			if got := rawStatus(t, r.method, base+r.path, admin, r.body); got == 401 || got == 403 || got >= 500 {
				t.Errorf("via %s: %s %s with the admin key: %d", via.ID(), r.method, r.path, got)
			}
		}
	}
	// The right grant is enough: publish with the publish-only key works
	// through the follower (relayed as that key, checked again by the
	// leader), and that key cannot read what it wrote.
	pub := grant("publisher", []string{"shop-*"}, api.ActionPublish)
	waitFor(t, 10*time.Second, "the follower knows the new key", func() bool {
		return rawStatus(t, "GET", "http://"+follower.HTTPAddr()+"/v1/openapi.json", pub, "") == 200
	})
	if st := rawStatus(t, "POST", "http://"+follower.HTTPAddr()+"/v1/stores/shop-9/events", pub, `{"type":"t","data":1}`); st != 201 {
		t.Fatalf("publish through the follower with a publish key: %d", st)
	}
	if st := rawStatus(t, "GET", "http://"+follower.HTTPAddr()+"/v1/stores/shop-9/events", pub, ""); st != 403 {
		t.Fatalf("read with a publish key: %d", st)
	}
}

func keyID(t *testing.T, c *api.Client, name string) string {
	t.Helper()
	keys, err := c.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == name {
			return k.ID
		}
	}
	t.Fatalf("no key named %s", name)
	return ""
}

// TestRevocationReachesEveryNode: a key revoked on the leader is refused
// by every node within a second.
func TestRevocationReachesEveryNode(t *testing.T) {
	nodes, admin := authCluster(t)
	leader := leaderOf(t, nodes)
	ac := keyClient(t, leader.HTTPAddr(), admin)
	k, err := ac.CreateKey(context.Background(), api.KeyRequest{Name: "soon revoked", Grants: []api.Grant{{Stores: []string{"*"}, Actions: []api.Action{api.ActionRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n := n
		waitFor(t, 10*time.Second, n.ID()+" knows the new key", func() bool {
			return rawStatus(t, "GET", "http://"+n.HTTPAddr()+"/v1/openapi.json", k.Key, "") == 200
		})
	}
	// /v1/openapi.json is answered by the node itself (a leader-level
	// read would be relayed, and the leader refuse the key for it).
	start := time.Now()
	if err := ac.RevokeKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n := n
		waitFor(t, 5*time.Second, n.ID()+" refuses the revoked key", func() bool {
			return rawStatus(t, "GET", "http://"+n.HTTPAddr()+"/v1/openapi.json", k.Key, "") == 401
		})
	}
	d := time.Since(start)
	if d > time.Second {
		t.Fatalf("revocation took %v to reach every node, want under 1s", d)
	}
	t.Logf("revoked on the leader and refused by all three nodes %v later", d.Round(time.Millisecond))
	for _, n := range nodes {
		if _, err := n.Key(context.Background(), k.ID); err == nil {
			t.Errorf("%s still holds the revoked key", n.ID())
		}
	}
}

// TestJoinTokens: an expired, a reused and a forged token, and one from
// another cluster, are refused and change nothing; a good one works once.
func TestJoinTokens(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	members := func() int {
		info, err := leader.Cluster(ctx, api.ConsistencyLocal)
		if err != nil {
			t.Fatal(err)
		}
		return len(info.Nodes)
	}
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	// Through a follower: it names its own cluster port, and relays the
	// enrollment to the leader, which spends the token.
	tryJoin := func(id, token string) error {
		cfg := fastConfig(id, filepath.Join(t.TempDir(), id))
		cfg.Join, cfg.JoinToken = []string{follower.HTTPAddr()}, token
		n, err := New(cfg)
		if err != nil {
			return err
		}
		if err := n.Open(); err != nil {
			return err
		}
		t.Cleanup(func() { n.Close() })
		return nil
	}
	good := joinToken(t, nodes)
	if err := tryJoin("n4", good); err != nil {
		t.Fatalf("a good token: %v", err)
	}
	waitFor(t, 10*time.Second, "n4 joined", func() bool { return members() == 4 })

	if err := tryJoin("n5", good); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("a reused token: %v", err)
	}
	expired, err := leader.CreateJoinToken(ctx, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the token expired", func() bool { return time.Now().After(expired.ExpiresAt) })
	if err := tryJoin("n6", expired.Token); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("an expired token: %v", err)
	}
	tok, _ := pki.ParseToken(good)
	forged, _ := pki.NewToken(tok.Fingerprint) // the right CA, a secret nobody issued
	if err := tryJoin("n7", forged.String()); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("a forged token: %v", err)
	}
	other, _ := pki.NewToken([32]byte{1, 2, 3}) // another cluster's CA
	if err := tryJoin("n8", other.String()); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("a token of another cluster: %v", err)
	}
	// A good token for a member's id would let its holder replace that
	// member: refused, and the token is not spent.
	spare := joinToken(t, nodes)
	if err := tryJoin("n2", spare); err == nil || !strings.Contains(err.Error(), "already a member") {
		t.Errorf("enrolling as n2: %v", err)
	}
	if err := tryJoin("n5", spare); err != nil {
		t.Errorf("the token refused for n2 no longer works: %v", err)
	}
	waitFor(t, 10*time.Second, "n5 joined", func() bool { return members() == 5 })
	if err := tryJoin("n9", "hjt_garbage"); err == nil {
		t.Error("a malformed token was accepted")
	}
	if got := members(); got != 5 {
		t.Fatalf("%d members after refused joins, want 5", got)
	}
	// Nothing of the refused nodes reached the cluster's node table.
	metas, _ := leader.db.Nodes()
	for _, m := range metas {
		if m.ID != "n1" && m.ID != "n2" && m.ID != "n3" && m.ID != "n4" && m.ID != "n5" {
			t.Errorf("refused node %s recorded", m.ID)
		}
	}
}
