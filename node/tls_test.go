package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/secrets"
	"github.com/herald-io/herald/internal/testcerts"
)

func mustCA(t *testing.T, name string) *testcerts.CA {
	t.Helper()
	ca, err := testcerts.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *testcerts.CA) *tls.Config {
	t.Helper()
	cfg, err := ca.Issue()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSCluster runs three nodes with Raft over mutual TLS and the API
// over HTTPS: publishing through a follower (forwarded over HTTPS) works;
// a node whose certificate comes from another CA can neither join nor,
// once forced into the configuration, receive a single entry.
func TestTLSCluster(t *testing.T) {
	ca := mustCA(t, "herald-test-ca")
	// With the operator's certificates every node is given the same
	// secrets key file.
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	mk, _ := secrets.NewMasterKey()
	if err := secrets.WriteKeyFile(keyFile, mk); err != nil {
		t.Fatal(err)
	}
	nodes := mustStartCluster(t, 3, func(c *Config) {
		cfg := mustIssue(t, ca)
		c.RaftTLS, c.HTTPTLS = cfg, cfg
		c.SecretsKeyFile = keyFile
	})
	leader := leaderOf(t, nodes)
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	client, err := api.NewClient(api.Config{Addresses: []string{"https://" + follower.HTTPAddr(), "https://" + leader.HTTPAddr()},
		TLS: &tls.Config{RootCAs: ca.Pool}, MaxRetries: -1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := client.Publish(context.Background(), "s", api.NewEvent{Type: "t", Data: json.RawMessage(`1`)}); err != nil || !res.Created {
		t.Fatalf("publish over HTTPS through a follower: %+v %v", res, err)
	}
	waitConverged(t, nodes, "s", 1)
	// Plain HTTP to the TLS listener never reaches the API.
	if r, err := http.Get("http://" + leader.HTTPAddr() + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("API answered plain HTTP")
		}
	}

	// An impostor with a certificate from another CA.
	other := mustCA(t, "other-ca")
	bad := fastConfig("impostor", t.TempDir())
	bad.RaftTLS, bad.HTTPTLS = mustIssue(t, other), mustIssue(t, other)
	bad.Join = []string{leader.HTTPAddr()}
	bad.SecretsKeyFile = keyFile
	imp := mustStart(t, bad)
	// It cannot join: the cluster does not trust it, nor it the cluster.
	// (Its join loop retries every 500 ms; watch the configuration for a
	// while.)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		info, err := leader.Cluster(context.Background(), api.ConsistencyLocal)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Nodes) != 3 {
			t.Fatalf("impostor joined: %+v", info.Nodes)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	// Forced into the configuration, it still receives nothing.
	// (On the current leader: leadership may have moved on a busy machine.)
	var addErr error
	waitFor(t, 20*time.Second, "the impostor added to the configuration", func() bool {
		addErr = leaderOf(t, nodes).raft.AddVoter(imp.ID(), imp.RaftAddr(), 5*time.Second)
		return addErr == nil
	})
	for i := 0; i < 5; i++ {
		if _, err := client.Publish(context.Background(), "s", api.NewEvent{Type: "t", Data: json.RawMessage(`2`)}); err != nil {
			t.Fatalf("publish with impostor in config: %v", err)
		}
	}
	waitConverged(t, nodes, "s", 6)
	if _, err := imp.DB().Store("s"); err == nil {
		t.Fatal("impostor received entries")
	}
	waitFor(t, 10*time.Second, "the leader reports the impostor unreachable", func() bool { return leaderOf(t, nodes).raft.Unreachable(imp.ID()) })
}

// TestOperatorPKIJoinerNeedsSecretsKey: with the operator's certificates
// there is no cluster CA to derive the secrets key from, so a joining
// node without --secrets-key-file refuses to start instead of making a
// key of its own that the cluster does not share.
func TestOperatorPKIJoinerNeedsSecretsKey(t *testing.T) {
	ca := mustCA(t, "herald-test-ca")
	cfg := fastConfig("n2", t.TempDir())
	tc := mustIssue(t, ca)
	cfg.RaftTLS, cfg.HTTPTLS = tc, tc
	cfg.Join = []string{"127.0.0.1:1"}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Open(); !errors.Is(err, ErrNoSecretsKey) {
		n.Close()
		t.Fatalf("open without a secrets key: %v", err)
	}
}
