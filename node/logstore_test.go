package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// publishSome publishes events id from..to-1 of store through whichever
// node takes them (a leader found a moment ago may not lead any more;
// the event ids make a retry idempotent).
func publishSome(t *testing.T, nodes []*testNode, store string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		body := fmt.Sprintf(`{"id":"e%d","type":"t","data":%d}`, i, i)
		waitFor(t, 20*time.Second, fmt.Sprintf("publish e%d", i), func() bool {
			for _, n := range nodes {
				if n.Node == nil {
					continue
				}
				if code, _ := publish(t, n.HTTPAddr(), store, body); code == 201 || code == 200 {
					return true
				}
			}
			return false
		})
	}
}

// running is nodes without the ones the test stopped (a stopped testNode
// keeps its closed Node).
func running(nodes []*testNode, except ...*testNode) []*testNode {
	var out []*testNode
outer:
	for _, n := range nodes {
		for _, e := range except {
			if n == e {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// checkOnStore fails unless n's data dir holds only the log store kind.
func checkOnStore(t *testing.T, n *testNode, kind string) {
	t.Helper()
	if got := n.raft.LogStore(); got != kind {
		t.Fatalf("%s runs on %q, want %q", n.ID(), got, kind)
	}
	_, boltErr := os.Stat(filepath.Join(n.DataDir(), "raft.db"))
	_, walErr := os.Stat(filepath.Join(n.DataDir(), "wal"))
	if (boltErr == nil) != (kind == RaftLogStoreBolt) || (walErr == nil) != (kind == RaftLogStoreWAL) {
		t.Fatalf("%s on %s: raft.db %v, wal/ %v", n.ID(), kind, boltErr, walErr)
	}
}

// exerciseCluster runs what a cluster's log stores must survive: writes,
// a leadership transfer to every member (so each store leads once), a
// follower stopped while the others write and snapshot (it catches up by
// installing the snapshot, and then appends after it), a restart of every
// node, and writes again. Every node must end with every event.
func exerciseCluster(t *testing.T, nodes []*testNode) {
	t.Helper()
	publishSome(t, nodes, "s", 0, 20)
	for _, to := range nodes {
		waitFor(t, 20*time.Second, "leadership moves to "+to.ID(), func() bool {
			l := leaderOf(t, nodes)
			if l == to {
				return true
			}
			_, err := l.TransferLeader(context.Background(), to.ID())
			return err == nil && to.IsLeader()
		})
		publishSome(t, nodes, "s", 20+10*indexOf(nodes, to), 30+10*indexOf(nodes, to))
	}
	// Events 0-49 so far. A follower misses 50-299 and a snapshot that
	// truncates them away.
	var f *testNode // a follower, on wal if one is
	for _, n := range nodes {
		if !n.IsLeader() && (f == nil || n.raft.LogStore() == RaftLogStoreWAL) {
			f = n
		}
	}
	f.stop()
	publishSome(t, running(nodes, f), "s", 50, 300)
	// On both running nodes, past every event f lacks: whichever leads
	// once f is back (its return may bring an election) must have
	// truncated them. A follower that has not applied them yet has
	// "nothing new to snapshot", so the index is checked, not the call.
	upTo := statUint(t, leaderOf(t, running(nodes, f)), "applied_index")
	for _, n := range running(nodes, f) {
		waitFor(t, 20*time.Second, "a snapshot on "+n.ID(), func() bool {
			return n.Snapshot() == nil && statUint(t, n, "last_snapshot_index") >= upTo
		})
	}
	f.restart()
	publishSome(t, nodes, "s", 300, 320) // appended after the installed snapshot
	waitConverged(t, nodes, "s", 320)
	// The leader streams its current event log, newer than the snapshot:
	// f holds every event as soon as its FSM replaced the file, a moment
	// before raft records the snapshot as installed.
	waitFor(t, 20*time.Second, f.ID()+" records the installed snapshot", func() bool {
		return f.raft.Stats()["last_snapshot_index"] != "0"
	})
	for _, n := range nodes {
		n.stop()
	}
	for _, n := range nodes {
		n.restart()
	}
	publishSome(t, nodes, "s", 320, 330)
	waitConverged(t, nodes, "s", 330)
}

// statUint reads one of raft's numeric stats of n.
func statUint(t *testing.T, n *testNode, key string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(n.raft.Stats()[key], 10, 64)
	if err != nil {
		t.Fatalf("%s: raft stat %s: %v", n.ID(), key, err)
	}
	return v
}

func indexOf(nodes []*testNode, n *testNode) int {
	for i, m := range nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// snapshotOften keeps the trailing log short (and a wal leader's
// segments small: its compaction deletes only whole sealed segments), so
// a stopped follower has to install a snapshot.
func snapshotOften(c *Config) {
	c.SnapshotInterval = time.Hour // only explicit snapshots
	c.TrailingLogs = 8
	c.RaftWALSegmentSize = 16 << 10
}

// TestClusterOnBolt: a three-node cluster on raft-boltdb (raft.db), as
// data dirs of earlier releases are, whatever HERALD_TEST_RAFT_LOG_STORE
// says.
func TestClusterOnBolt(t *testing.T) {
	nodes := mustStartCluster(t, 3, func(c *Config) { snapshotOften(c); c.RaftLogStore = RaftLogStoreBolt })
	exerciseCluster(t, nodes)
	for _, n := range nodes {
		checkOnStore(t, n, RaftLogStoreBolt)
	}
}

// TestMixedLogStoreCluster: the log store is each node's own business;
// nodes on wal and on bolt form one cluster, lead it in turn, catch up
// from each other's snapshots and logs.
func TestMixedLogStoreCluster(t *testing.T) {
	kinds := []string{RaftLogStoreBolt, RaftLogStoreWAL, RaftLogStoreBolt}
	if testLogStore == RaftLogStoreBolt {
		kinds = []string{RaftLogStoreWAL, RaftLogStoreBolt, RaftLogStoreWAL}
	}
	i := 0
	nodes := mustStartCluster(t, 3, func(c *Config) { snapshotOften(c); c.RaftLogStore = kinds[i]; i++ })
	exerciseCluster(t, nodes)
	for i, n := range nodes {
		checkOnStore(t, n, kinds[i])
	}
}

// TestConvertedNodesRejoin: a three-node cluster on bolt is converted to
// wal one node at a time, the leader too (stopped, converted, restarted
// with no --raft-log-store): each rejoins with every event and its term,
// and the cluster takes writes throughout.
func TestConvertedNodesRejoin(t *testing.T) {
	nodes := mustStartCluster(t, 3, func(c *Config) { c.RaftLogStore = RaftLogStoreBolt })
	publishSome(t, nodes, "s", 0, 50)
	waitConverged(t, nodes, "s", 50)
	// Followers first, then the leader.
	order := []*testNode{}
	l := leaderOf(t, nodes)
	for _, n := range nodes {
		if n != l {
			order = append(order, n)
		}
	}
	order = append(order, l)
	next := 50
	for _, n := range order {
		n.stop()
		// What it had when it stopped: raft keeps both on disk before it
		// takes them in memory.
		term, lastIndex := n.raft.Term(), n.raft.Stats()["last_log_index"]
		// The others go on taking writes meanwhile.
		publishSome(t, running(nodes, n), "s", next, next+10)
		next += 10
		res, err := ConvertLogStore(n.DataDir(), RaftLogStoreWAL, testLogger())
		if err != nil {
			t.Fatalf("convert %s: %v", n.ID(), err)
		}
		if res.CurrentTerm != term || fmt.Sprint(res.Last) != lastIndex {
			t.Fatalf("%s converted: %+v; it was at term %d, last index %s", n.ID(), res, term, lastIndex)
		}
		if !strings.HasPrefix(filepath.Base(res.Backup), "raft.db.bak-") {
			t.Fatalf("backup %q", res.Backup)
		}
		n.cfg.RaftLogStore = "" // what the data dir holds
		n.restart()
		checkOnStore(t, n, RaftLogStoreWAL)
		if n.raft.Term() < term {
			t.Fatalf("%s restarted at term %d, below %d", n.ID(), n.raft.Term(), term)
		}
		publishSome(t, nodes, "s", next, next+10)
		next += 10
		waitConverged(t, nodes, "s", uint64(next))
		waitFor(t, 20*time.Second, n.ID()+" is a voter again", func() bool {
			info, err := n.Cluster(context.Background(), api.ConsistencyLocal)
			if err != nil || info.Leader == "" {
				return false
			}
			for _, m := range info.Nodes {
				if m.ID == n.ID() {
					return m.Suffrage == "voter"
				}
			}
			return false
		})
	}
}

// TestLogStoreMustMatchDataDir: a node on a data dir with raft.db started
// with RaftLogStore wal (or the other way round), or on one with both, is
// refused with ErrRaftLogStore naming the flag, and changes nothing in
// the dir.
func TestLogStoreMustMatchDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig("n1", dir)
	cfg.Bootstrap, cfg.RaftLogStore = true, RaftLogStoreBolt
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "n1 leads", n.IsLeader)
	mustPublish(t, n.HTTPAddr(), "s", `{"type":"t","data":1}`)
	n.stop()
	list := func() []string {
		var names []string
		filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error { names = append(names, p); return nil })
		return names
	}
	before := list()
	try := func(want, wantMsg string) {
		t.Helper()
		c := n.cfg
		c.RaftLogStore = want
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		err = m.Open()
		if err == nil {
			m.Close()
			t.Fatalf("--raft-log-store %q on %v started", want, before)
		}
		if !errors.Is(err, ErrRaftLogStore) || !strings.Contains(err.Error(), "--raft-log-store") || !strings.Contains(err.Error(), wantMsg) {
			t.Fatalf("--raft-log-store %q: %v", want, err)
		}
		if after := list(); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatalf("the refused start changed the data dir:\n%v\n%v", before, after)
		}
	}
	try(RaftLogStoreWAL, "herald convert-log-store")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wal", "wal-meta.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before = list()
	try("", "holds both")
	try(RaftLogStoreBolt, "holds both")
	// Without the stray wal/ the node starts again on raft.db.
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	n.cfg.RaftLogStore = ""
	n.restart()
	checkOnStore(t, n, RaftLogStoreBolt)
	if si := localStore(t, n, "s"); si.LastSeq != 1 {
		t.Fatalf("after the refusals: %+v", si)
	}
}

// TestConvertRunningNodeFails: converting the data dir of a running node
// fails at once (the data dir's lock) and changes nothing.
func TestConvertRunningNodeFails(t *testing.T) {
	cfg := fastConfig("n1", t.TempDir())
	cfg.Bootstrap, cfg.RaftLogStore = true, RaftLogStoreBolt
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "n1 leads", n.IsLeader)
	start := time.Now()
	_, err := ConvertLogStore(n.DataDir(), RaftLogStoreWAL, testLogger())
	if !errors.Is(err, hlog.ErrLocked) || time.Since(start) > 3*time.Second {
		t.Fatalf("convert a running node's dir: %v after %v", err, time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(n.DataDir(), "wal")); !os.IsNotExist(err) {
		t.Fatalf("wal/ after the refused conversion: %v", err)
	}
	mustPublish(t, n.HTTPAddr(), "s", `{"type":"t","data":1}`)
}
