package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
	"github.com/herald-io/herald/node"
)

// TestConvertLogStoreCommand: a stopped node's raft.db becomes wal/ with
// herald convert-log-store (a second run does nothing), herald serve then
// refuses --raft-log-store bolt (and $HERALD_RAFT_LOG_STORE=bolt) on that
// dir and starts on wal without the flag, with its events.
func TestConvertLogStoreCommand(t *testing.T) {
	wantUsage(t, herald(t, opts{}, "convert-log-store"), "--data is required", "herald convert-log-store")
	wantUsage(t, herald(t, opts{}, "convert-log-store", "--data", t.TempDir(), "--to", "rocks"), "must be wal or bolt", "herald convert-log-store")
	if r := herald(t, opts{}, "convert-log-store", "--data", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "no Raft state") {
		t.Fatalf("an empty dir:\n%s", r)
	}

	nodes := startCluster(t, 1, func(c *node.Config) { c.RaftLogStore = node.RaftLogStoreBolt })
	n := nodes[0]
	testutil.WaitFor(t, 20*time.Second, "the node leads", n.IsLeader)
	c := client{t, "http://" + n.HTTPAddr()}
	for i := 0; i < 5; i++ {
		c.ok("publish", "shop", "t", "--data", "{}")
	}
	dir, raftAddr := n.DataDir(), n.RaftAddr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	r := herald(t, opts{}, "convert-log-store", "--data", dir)
	re := regexp.MustCompile(`^converted ` + regexp.QuoteMeta(dir) + ` from bolt to wal: entries 1-(\d+) \(\d+\), term (\d+); the old store is kept as ` +
		regexp.QuoteMeta(dir) + `/raft\.db\.bak-\d{8}T\d{6}Z\nstart the node with herald serve: it runs on wal from now on\n$`)
	if r.code != 0 || !re.MatchString(r.stdout) {
		t.Fatalf("convert:\n%s", r)
	}
	if r := herald(t, opts{}, "convert-log-store", "--data", dir, "--to", "wal"); r.code != 0 || r.stdout != dir+" already uses wal: nothing to do\n" {
		t.Fatalf("second run:\n%s", r)
	}

	for _, o := range []opts{{}, {env: []string{"HERALD_RAFT_LOG_STORE=bolt"}}} {
		args := []string{"serve", "--data", dir, "--http", freeAddr(t), "--raft", freeAddr(t), "--log-level", "off"}
		if o.env == nil {
			args = append(args, "--raft-log-store", "bolt")
		}
		r := herald(t, o, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "--raft-log-store bolt") || !strings.Contains(r.stderr, "holds a wal Raft log") ||
			!strings.Contains(r.stderr, "herald convert-log-store --data "+dir+" --to bolt") {
			t.Fatalf("serve %v %v on a converted dir:\n%s", o.env, args[1:], r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); !os.IsNotExist(err) {
		t.Fatalf("raft.db after the refused starts: %v", err)
	}

	// Without the flag it runs on wal, with the events.
	cfg := node.Config{ID: n.ID(), DataDir: dir, HTTPAddr: "127.0.0.1:0", RaftAddr: raftAddr, NoAuth: true, Logger: testutil.Quiet()}
	again, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Open(); err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	testutil.WaitFor(t, 20*time.Second, "the converted node leads", again.IsLeader)
	c = client{t, "http://" + again.HTTPAddr()}
	st := okJSON[api.Store](c, "stores", "shop", "-o", "json")
	if st.LastSeq != 5 {
		b, _ := json.Marshal(st)
		t.Fatalf("after the conversion: %s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal", "wal-meta.db")); err != nil {
		t.Fatal(err)
	}
}
