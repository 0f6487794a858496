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
			if err := appendBig(s, fmt.Sprintf("r%d-%d", round, i)); err != nil {
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

// appendBig commits one event of 2 KiB.
func appendBig(s *Store, id string) error {
	res, err := s.ApplyAppend([]AppendRequest{{Store: "p", Events: []hlog.NewEvent{
		{ID: id, Type: "t", Version: "1", Timestamp: 1, Data: []byte(`"` + strings.Repeat("a", 2048) + `"`)},
	}}}).Wait()
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	return err
}

// TestTruncatedFollowerRestarts: an isolated leader appends an entry it
// cannot commit; after the partition heals, the new leader's log replaces
// it (a tail truncation of the old leader's log store). The old leader
// must then restart from its data dir and catch up: the case raft-wal#31
// broke (v0.4.0 could not read the truncated segment after a restart).
func TestTruncatedFollowerRestarts(t *testing.T) {
	c := newMemCluster(t)
	old := c.leader(0, 1, 2)
	if err := appendOne(c.stores[old], "before"); err != nil {
		t.Fatal(err)
	}
	c.isolate(old)
	if err := appendOne(c.stores[old], "lost"); err == nil {
		t.Fatal("isolated leader acknowledged a write")
	}
	lostIndex := c.stores[old].raft.LastIndex()
	var rest []int
	for i := range c.stores {
		if i != old {
			rest = append(rest, i)
		}
	}
	for i := 0; i < 3; i++ {
		waitUntil(t, "the majority takes a write", func() bool {
			for _, j := range rest {
				if appendOne(c.stores[j], fmt.Sprintf("after%d", i)) == nil {
					return true
				}
			}
			return false
		})
	}
	c.heal()
	waitUntil(t, "the old leader holds the majority's log", func() bool {
		si, err := c.stores[old].cfg.DB.Store("p")
		return err == nil && si.LastSeq == 4
	})

	// Restart it from its data dir, on a new transport at its address.
	s := c.stores[old]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, tr := raft.NewInmemTransportWithTimeout(c.trans[old].LocalAddr(), 200*time.Millisecond)
	c.trans[old] = tr
	c.heal()
	cfg := s.cfg
	cfg.transport, cfg.Bootstrap = tr, false
	again, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Open(); err != nil {
		t.Fatalf("restart after the truncation (%s): %v", again.cfg.LogStore, err)
	}
	t.Cleanup(func() { again.Close() })
	c.stores[old] = again
	if again.raft.LastIndex() < lostIndex {
		t.Fatalf("restarted with last index %d, below the truncated entry's %d", again.raft.LastIndex(), lostIndex)
	}
	waitUntil(t, "a write after the restart reaches it", func() bool {
		for _, j := range rest {
			if appendOne(c.stores[j], "late") == nil {
				return true
			}
		}
		return false
	})
	waitUntil(t, "the restarted node applies it", func() bool {
		si, err := again.cfg.DB.Store("p")
		return err == nil && si.LastSeq == 5
	})
}
