package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/secrets"
	"github.com/herald-io/herald/internal/testutil"
	"github.com/herald-io/herald/node"
)

// authNode starts one node with authentication on and returns a client
// for it and its first admin key.
func authNode(t *testing.T) (client, string) {
	t.Helper()
	nodes, err := node.StartLocalCluster(context.Background(), node.LocalCluster{Dir: t.TempDir(), Nodes: 1, Logger: testutil.Quiet()})
	for _, n := range nodes {
		t.Cleanup(func() { n.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(nodes[0].DataDir(), node.AdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return client{t, "http://" + nodes[0].HTTPAddr()}, strings.TrimSpace(string(b))
}

func TestKeysCommands(t *testing.T) {
	c, admin := authNode(t)
	wantAPIError(t, c.run("stores"), "unauthorized")
	as := func(key string) opts { return opts{env: []string{"HERALD_API_KEY=" + key}} }

	out := c.runIn(as(admin), "keys", "create", "--name", "ci", "--store", "shop-1", "--action", "publish", "--expires", "720h")
	if out.code != 0 {
		t.Fatalf("keys create:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	key := lines[len(lines)-1]
	if !strings.HasPrefix(key, api.KeyPrefix) || !strings.Contains(out.stdout, "publish on shop-1") {
		t.Fatalf("keys create output:\n%s", out.stdout)
	}
	// The new key publishes to shop-1, and may do nothing else.
	if r := c.runIn(as(key), "publish", "shop-1", "store/order/created", "--data", "{}"); r.code != 0 {
		t.Fatalf("publish with the new key:\n%s", r)
	}
	wantAPIError(t, c.runIn(as(key), "events", "shop-1"), "forbidden")
	wantAPIError(t, c.runIn(as(key), "publish", "shop-2", "t", "--data", "{}"), "forbidden")
	wantAPIError(t, c.runIn(as(key), "keys", "list"), "forbidden")
	// --api-key wins over the variable.
	if r := herald(t, as("hk_wrong"), "publish", "shop-1", "t", "--data", "{}", "--addr", c.addr, "--api-key", key); r.code != 0 {
		t.Fatalf("--api-key over $HERALD_API_KEY:\n%s", r)
	}

	list := c.runIn(as(admin), "keys", "list")
	if list.code != 0 || !strings.Contains(list.stdout, "publish on shop-1") || strings.Contains(list.stdout, key) {
		t.Fatalf("keys list:\n%s", list)
	}
	var id string
	for _, row := range tableRows(list.stdout) {
		if len(row) > 1 && row[1] == "ci" {
			id = row[0]
		}
	}
	if !strings.HasPrefix(id, api.KeyIDPrefix) {
		t.Fatalf("no id for ci in:\n%s", list.stdout)
	}
	got := decodeOne[api.Key](t, c.runIn(as(admin), "keys", "get", id, "-o", "json").stdout)
	if got.Name != "ci" || got.Key != "" || got.ExpiresAt == nil || got.LastUsedAt == nil {
		t.Fatalf("keys get: %+v", got)
	}
	if r := c.runIn(as(admin), "keys", "revoke", id); r.code != 0 || r.stdout != "revoked "+id+"\n" {
		t.Fatalf("keys revoke:\n%s", r)
	}
	wantAPIError(t, c.runIn(as(key), "publish", "shop-1", "t", "--data", "{}"), "unauthorized")
	wantAPIError(t, c.runIn(as(admin), "keys", "revoke", id), "not_found")

	// Admin keys, and what create refuses before it asks.
	if r := c.runIn(as(admin), "keys", "create", "--name", "ops", "--admin", "-o", "json"); r.code != 0 || decodeOne[api.Key](t, r.stdout).Key == "" {
		t.Fatalf("keys create --admin:\n%s", r)
	}
	wantUsage(t, c.runIn(as(admin), "keys", "create", "--name", "x"), "give --admin, or --store and --action", "herald keys create")
	wantUsage(t, c.runIn(as(admin), "keys", "create", "--name", "x", "--admin", "--store", "a"), "--admin has every right", "herald keys create")
	wantUsage(t, c.runIn(as(admin), "keys", "create", "--name", "x", "--store", "a", "--action", "write"), `--action "write"`, "herald keys create")
	wantAPIError(t, c.runIn(as(admin), "keys", "create", "--name", "x", "--store", "A*B", "--action", "read"), "invalid_key")

	// cluster token: the token is the last line.
	tok := c.runIn(as(admin), "cluster", "token", "--ttl", "10m")
	tl := strings.Split(strings.TrimSpace(tok.stdout), "\n")
	if tok.code != 0 || !strings.HasPrefix(tl[len(tl)-1], api.JoinTokenPrefix) {
		t.Fatalf("cluster token:\n%s", tok)
	}
	wantAPIError(t, c.runIn(as(key), "cluster", "token"), "unauthorized")
}

// TestDefaultKeyFile: with no key given, the CLI reads
// ./herald-data/admin.key, but only for the default address.
func TestDefaultKeyFile(t *testing.T) {
	t.Chdir(t.TempDir())
	os.MkdirAll("herald-data", 0o700)
	os.WriteFile(filepath.Join("herald-data", "admin.key"), []byte("hk_fromfile\n"), 0o600)
	k := &conn{addrs: addrList{list: []string{api.DefaultAddress}}}
	if got := k.key(); got != "hk_fromfile" {
		t.Fatalf("default address: %q", got)
	}
	k.apiKey = "hk_flag"
	if got := k.key(); got != "hk_flag" {
		t.Fatalf("with --api-key: %q", got)
	}
	k = &conn{addrs: addrList{list: []string{"http://127.0.0.1:9090"}}}
	if got := k.key(); got != "" {
		t.Fatalf("another address read the local key file: %q", got)
	}
}

func TestSecretsCreateKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.key")
	r := herald(t, opts{}, "secrets", "create-key", "--out", file)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote "+file+" (master key ") {
		t.Fatalf("create-key:\n%s", r)
	}
	m, err := secrets.ReadKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if strings.Contains(r.stdout, m.String()) {
		t.Fatal("the key was printed")
	}
	if r := herald(t, opts{}, "secrets", "create-key", "--out", file); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("over an existing file:\n%s", r)
	}
}
