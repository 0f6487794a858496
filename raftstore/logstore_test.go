package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// The log store of new data dirs in this package's tests:
// HERALD_TEST_RAFT_LOG_STORE=bolt runs them all on raft-boltdb (default
// wal, as in production).
func init() {
	if v := os.Getenv("HERALD_TEST_RAFT_LOG_STORE"); v != "" {
		if v != LogStoreBolt && v != LogStoreWAL {
			panic(fmt.Sprintf("HERALD_TEST_RAFT_LOG_STORE=%q: want %s or %s", v, LogStoreBolt, LogStoreWAL))
		}
		defaultLogStore = v
	}
}

var bothStores = []string{LogStoreBolt, LogStoreWAL}

func quietHCLog() *hcLogger {
	return newHCLogger(slog.New(slog.NewTextHandler(io.Discard, nil)), "raft").(*hcLogger)
}

// openTestStore opens (creating) a log store of kind in dir.
func openTestStore(t *testing.T, dir, kind string, segmentSize int) logStore {
	t.Helper()
	s, err := openLogStore(storePath(dir, kind), kind, segmentSize, quietHCLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testEntry(i uint64, term uint64) *raft.Log {
	return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", int(i%97)))),
		Extensions: []byte{byte(i)}, AppendedAt: time.Unix(1_800_000_000, int64(i)).UTC()}
}

// fillStore writes entries first..last (term = index/100 + 1) in batches
// of 100, and the stable keys raft keeps.
func fillStore(t *testing.T, s logStore, first, last uint64) {
	t.Helper()
	for i := first; i <= last; i += 100 {
		var batch []*raft.Log
		for j := i; j < i+100 && j <= last; j++ {
			batch = append(batch, testEntry(j, j/100+1))
		}
		if err := s.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range []error{
		s.SetUint64([]byte("LastVoteTerm"), last/100+1), s.Set([]byte("LastVoteCand"), []byte("n2")),
		s.SetUint64([]byte("CurrentTerm"), last/100+2),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkStore fails unless s holds exactly entries first..last as
// fillStore wrote them, and its stable keys.
func checkStore(t *testing.T, s logStore, first, last uint64) {
	t.Helper()
	f, l, err := bounds(s)
	if err != nil || f != first || l != last {
		t.Fatalf("entries %d-%d (%v), want %d-%d", f, l, err, first, last)
	}
	for i := first; i <= last; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := testEntry(i, i/100+1)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d = %+v, want %+v", i, got, want)
		}
	}
	if v, err := getUint64(s, []byte("CurrentTerm")); err != nil || v != last/100+2 {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	if v, err := getUint64(s, []byte("LastVoteTerm")); err != nil || v != last/100+1 {
		t.Fatalf("LastVoteTerm = %d, %v", v, err)
	}
	if v, err := getBytes(s, []byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Fatalf("LastVoteCand = %q, %v", v, err)
	}
}

// TestChooseLogStore: what a data dir holds decides its store; a flag
// that contradicts it, or a dir with both, is ErrLogStore naming the
// flag and the way out; an unfinished conversion leaves the old store in
// charge.
func TestChooseLogStore(t *testing.T) {
	layout := func(t *testing.T, kinds ...string) string {
		dir := t.TempDir()
		for _, k := range kinds {
			if k == "marker-wal" {
				if err := os.WriteFile(filepath.Join(dir, convertingFile), []byte(LogStoreWAL), 0o600); err != nil {
					t.Fatal(err)
				}
				continue
			}
			openTestStore(t, dir, k, 1<<20).Close()
		}
		return dir
	}
	for _, tc := range []struct {
		name  string
		holds []string
		want  string
		kind  string // "" when refused
		msg   string
	}{
		{"new dir, default", nil, "", defaultLogStore, ""},
		{"new dir, bolt", nil, LogStoreBolt, LogStoreBolt, ""},
		{"new dir, wal", nil, LogStoreWAL, LogStoreWAL, ""},
		{"raft.db, default", []string{LogStoreBolt}, "", LogStoreBolt, ""},
		{"raft.db, bolt", []string{LogStoreBolt}, LogStoreBolt, LogStoreBolt, ""},
		{"raft.db, wal", []string{LogStoreBolt}, LogStoreWAL, "", "holds a bolt Raft log"},
		{"wal, default", []string{LogStoreWAL}, "", LogStoreWAL, ""},
		{"wal, bolt", []string{LogStoreWAL}, LogStoreBolt, "", "holds a wal Raft log"},
		{"both", []string{LogStoreBolt, LogStoreWAL}, "", "", "holds both"},
		{"both, wal", []string{LogStoreBolt, LogStoreWAL}, LogStoreWAL, "", "holds both"},
		{"unfinished conversion", []string{LogStoreBolt, LogStoreWAL, "marker-wal"}, "", LogStoreBolt, ""},
		{"unfinished conversion, wal", []string{LogStoreBolt, LogStoreWAL, "marker-wal"}, LogStoreWAL, "", "did not finish"},
		{"unknown", nil, "rocks", "", "unknown log store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := layout(t, tc.holds...)
			kind, err := ChooseLogStore(dir, tc.want)
			if tc.kind != "" {
				if err != nil || kind != tc.kind {
					t.Fatalf("ChooseLogStore = %q, %v; want %q", kind, err, tc.kind)
				}
				return
			}
			if !errors.Is(err, ErrLogStore) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ChooseLogStore = %q, %v; want ErrLogStore saying %q", kind, err, tc.msg)
			}
			if tc.want != "rocks" && !strings.Contains(err.Error(), "--raft-log-store") && !strings.Contains(err.Error(), "convert-log-store") {
				t.Fatalf("%v names neither the flag nor the conversion", err)
			}
		})
	}
}

// TestLogStoresAlike: both stores keep entries and stable keys across a
// reopen, after a head truncation (a snapshot's compaction) and a tail
// truncation (a follower dropping entries a new leader replaced). The
// tail case is raft-wal#31, fixed in v0.4.1: v0.4.0 sealed the truncated
// segment without its index, and the next open failed.
func TestLogStoresAlike(t *testing.T) {
	for _, kind := range bothStores {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, kind, 64<<10) // small segments: several of them
			fillStore(t, s, 1, 1000)
			checkStore(t, s, 1, 1000)
			if err := s.DeleteRange(1, 300); err != nil { // compaction
				t.Fatal(err)
			}
			// A conflicting suffix, twice: once across segments, once
			// inside the unsealed tail (the case of raft-wal#31).
			for _, tr := range []struct{ from, to, upTo uint64 }{{901, 1000, 990}, {981, 990, 985}} {
				if err := s.DeleteRange(tr.from, tr.to); err != nil {
					t.Fatal(err)
				}
				var repl []*raft.Log // the new leader's entries
				for i := tr.from; i <= tr.upTo; i++ {
					repl = append(repl, testEntry(i, i/100+1))
				}
				if err := s.StoreLogs(repl); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, dir, kind, 64<<10)
			defer s.Close()
			if f, l, err := bounds(s); err != nil || f != 301 || l != 985 {
				t.Fatalf("after reopen: entries %d-%d, %v", f, l, err)
			}
			for i := uint64(301); i <= 985; i++ {
				var got raft.Log
				if err := s.GetLog(i, &got); err != nil || !bytes.Equal(got.Data, testEntry(i, 0).Data) {
					t.Fatalf("entry %d after reopen: %v", i, err)
				}
			}
			if err := s.StoreLogs([]*raft.Log{testEntry(986, 10)}); err != nil {
				t.Fatalf("append after reopen: %v", err)
			}
			if v, err := getUint64(s, []byte("CurrentTerm")); err != nil || v != 12 {
				t.Fatalf("CurrentTerm after reopen = %d, %v", v, err)
			}
		})
	}
}

// TestWALFilesShrinkAfterSnapshots: on wal, a snapshot's compaction
// deletes whole sealed segments, so the disk use of DATA/wal/ goes down
// after a snapshot and stays bounded under a steady load (raft.db, for
// comparison, never shrinks).
func TestWALFilesShrinkAfterSnapshots(t *testing.T) {
	const segment = 64 << 10
	s, err := New(Config{
		ID: "n1", Dir: t.TempDir(), Bind: "127.0.0.1:0", DB: mustDB(t), Logger: testutil.Quiet(), Bootstrap: true,
		LogStore: LogStoreWAL, WALSegmentSize: segment,
		SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour, TrailingLogs: 50, // snapshots only when asked
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	testutil.WaitFor(t, 10*time.Second, "n1 leads", s.IsLeader)
	if s.LogStore() != LogStoreWAL {
		t.Fatalf("store %q", s.LogStore())
	}
	segments := func() int {
		m, _ := filepath.Glob(filepath.Join(s.cfg.Dir, walDir, "*.wal"))
		return len(m)
	}
	size := func() int64 {
		name, n, err := s.LogStoreSize()
		if err != nil || name != "wal" {
			t.Fatalf("LogStoreSize = %q %d %v", name, n, err)
		}
		return n
	}
	write := func(n int, round int) {
		for i := 0; i < n; i++ {
			if err := appendSized(s, fmt.Sprintf("r%d-%d", round, i), 2050); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(400, 0) // ~400 × 2 KiB: a dozen segments
	before, segsBefore := size(), segments()
	if segsBefore < 8 {
		t.Fatalf("only %d segments of %d bytes after 400 entries of 2 KiB", segsBefore, segment)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// Sealed segments wholly before the trailing 50 entries go (their files
	// are deleted once no reader holds them).
	testutil.WaitFor(t, 10*time.Second, "old segments deleted", func() bool { return segments() <= 3 })
	after := size()
	if after >= before/2 {
		t.Fatalf("wal/ is %d bytes after the snapshot, %d before", after, before)
	}
	// Under a steady load with a snapshot every round, it stays bounded.
	for round := 1; round <= 3; round++ {
		write(200, round)
		if err := s.Snapshot(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("round %d: old segments deleted", round), func() bool { return segments() <= 3 })
	}
	meta, err := os.Stat(filepath.Join(s.cfg.Dir, walDir, "wal-meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	// A segment ends a little past its limit: the append that crosses it
	// and the index written when it is sealed.
	if n := size(); n > 3*(segment+segment/8)+meta.Size() {
		t.Fatalf("wal/ grew to %d bytes (metadata %d) over rounds that each ended with a snapshot", n, meta.Size())
	}
	t.Logf("wal/: %d bytes in %d segments before the first snapshot, %d after; %d after three more rounds", before, segsBefore, after, size())
}

// tcpNode is a Store on plain TCP at a fixed loopback address, which a
// test stops and starts again on the same dir, event log and address.
type tcpNode struct {
	t   *testing.T
	cfg Config
	*Store
}

func newTCPNode(t *testing.T, id string, bootstrap bool) *tcpNode {
	n := &tcpNode{t: t, cfg: Config{
		ID: id, Dir: t.TempDir(), Bind: testutil.LoopbackAddr(t), DB: mustDB(t), Logger: testutil.Quiet(), Bootstrap: bootstrap,
		// Long enough that a loaded machine holds no election of its own,
		// and that a leader cut off keeps leading for a moment.
		HeartbeatTimeout: 2 * time.Second, ElectionTimeout: 2 * time.Second, LeaderLeaseTimeout: 2 * time.Second,
	}}
	n.start()
	return n
}

func (n *tcpNode) start() {
	n.t.Helper()
	s, err := New(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		n.t.Fatalf("open %s: %v", n.cfg.ID, err)
	}
	n.cfg.Bootstrap = false
	n.Store = s
	n.t.Cleanup(func() { s.Close() })
}

func (n *tcpNode) stop() {
	n.t.Helper()
	if err := n.Store.Close(); err != nil {
		n.t.Errorf("close %s: %v", n.cfg.ID, err)
	}
}

func (n *tcpNode) lastSeq() uint64 {
	si, err := n.cfg.DB.Store("p")
	if err != nil {
		return 0
	}
	return si.LastSeq
}

// appendVia commits one event through whichever of nodes leads (a
// leader found a moment ago may not lead any more; the id makes a retry
// idempotent).
func appendVia(t *testing.T, id string, nodes ...*tcpNode) {
	t.Helper()
	waitUntil(t, "commit "+id, func() bool {
		for _, n := range nodes {
			if n.IsLeader() && appendOne(n.Store, id) == nil {
				return true
			}
		}
		return false
	})
}

// TestTruncatedFollowerRestarts: a leader whose followers are gone
// appends an entry it cannot commit and stops; the others elect a leader
// that commits other entries at that index. When the old leader comes
// back its entry is replaced (a tail truncation of its log store), and it
// must then restart from its data dir and catch up: the case raft-wal#31
// broke (v0.4.0 could not read the truncated segment after a restart).
// Real Raft over TCP on 127.0.0.1, each store as HERALD_TEST_RAFT_LOG_STORE
// says.
func TestTruncatedFollowerRestarts(t *testing.T) {
	n1, n2, n3 := newTCPNode(t, "n1", true), newTCPNode(t, "n2", false), newTCPNode(t, "n3", false)
	waitUntil(t, "n1 leads", n1.IsLeader)
	for _, n := range []*tcpNode{n2, n3} {
		if err := n1.AddVoter(n.cfg.ID, n.Addr(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	appendVia(t, "before", n1)
	for _, n := range []*tcpNode{n1, n2, n3} {
		waitUntil(t, n.cfg.ID+" applies the first entry", func() bool { return n.lastSeq() == 1 })
	}
	var wg sync.WaitGroup
	for _, n := range []*tcpNode{n2, n3} {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
	before := n1.raft.LastIndex()
	if !n1.IsLeader() {
		t.Fatal("n1 stopped leading as soon as its followers stopped (its lease is 2 s)")
	}
	if err := appendOne(n1.Store, "lost"); err == nil {
		t.Fatal("a leader without followers acknowledged a write")
	}
	if n1.raft.LastIndex() <= before {
		t.Fatalf("the uncommitted entry is not in n1's log (last index %d, was %d)", n1.raft.LastIndex(), before)
	}
	n1.stop()

	n2.start()
	n3.start()
	for i := 0; i < 3; i++ {
		appendVia(t, fmt.Sprintf("after%d", i), n2, n3)
	}
	n1.start() // its entry conflicts with the new leader's: truncated
	waitUntil(t, "n1 holds the new leader's entries", func() bool { return n1.lastSeq() == 4 })
	n1.stop()
	n1.start() // from the truncated log store
	appendVia(t, "late", n1, n2, n3)
	for _, n := range []*tcpNode{n1, n2, n3} {
		waitUntil(t, n.cfg.ID+" applies every entry", func() bool { return n.lastSeq() == 5 })
		if _, err := n.cfg.DB.Get("p", "lost"); !errors.Is(err, hlog.ErrEventNotFound) {
			t.Fatalf("%s holds the entry that was never committed: %v", n.cfg.ID, err)
		}
	}
}
