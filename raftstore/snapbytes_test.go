package raftstore

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// noCountSnapshots leaves raft's own snapshots by entry count out of a
// test: a threshold no test reaches, checked once an hour.
func noCountSnapshots(c *Config) {
	c.SnapshotThreshold, c.SnapshotInterval = 1<<40, time.Hour
	c.snapshotCheck = 50 * time.Millisecond
}

// bytesSolo opens a single-node Store over TCP on 127.0.0.1 with no
// snapshots by count, tweak applied, and waits until it leads.
func bytesSolo(t *testing.T, logger *slog.Logger, tweak func(c *Config)) *Store {
	t.Helper()
	cfg := Config{ID: "solo", Dir: t.TempDir(), Bind: testutil.LoopbackAddr(t), DB: mustDB(t), Logger: logger, Bootstrap: true}
	noCountSnapshots(&cfg)
	tweak(&cfg)
	return startSolo(t, cfg)
}

// appendSized commits one event whose data is a JSON string of n bytes:
// one Raft entry of a little over n bytes.
func appendSized(s *Store, id string, n int) error {
	res, err := s.ApplyAppend([]AppendRequest{{Store: "p", Events: []hlog.NewEvent{
		{ID: id, Type: "t", Version: "1", Timestamp: 1, Data: []byte(`"` + strings.Repeat("b", n-2) + `"`)},
	}}}).Wait()
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	return err
}

// fill commits entries of size bytes until more than total bytes went in.
func fill(t *testing.T, s *Store, prefix string, size, total int) (entries int) {
	t.Helper()
	for sent := 0; sent <= total; sent += size {
		if err := appendSized(s, fmt.Sprintf("%s%d", prefix, entries), size); err != nil {
			t.Fatal(err)
		}
		entries++
	}
	return entries
}

func lastSnapshotIndex(s *Store) string { return s.Stats()["last_snapshot_index"] }

func logBounds(t *testing.T, s *Store) (first, last uint64) {
	t.Helper()
	first, err := s.logs.FirstIndex()
	if err == nil {
		last, err = s.logs.LastIndex()
	}
	if err != nil {
		t.Fatal(err)
	}
	return first, last
}

func TestTrailingEntries(t *testing.T) {
	for _, c := range []struct{ cfg, bytes, avg, want uint64 }{
		{10240, 256 << 20, 0, 10240},         // nothing applied yet: the count
		{10240, 256 << 20, 500, 10240},       // small entries: the count binds
		{10240, 256 << 20, 512 << 10, 512},   // group-commit batches: the bytes bind
		{10240, 1 << 20, 512 << 10, 64},      // the floor
		{16, 1 << 20, 512 << 10, 16},         // TrailingLogs below the floor still wins
		{300, math.MaxUint64, 32 << 10, 300}, // bytes off
		{10240, 4 << 20, 32<<10 + 100, 4 << 20 / (32<<10 + 100)},
	} {
		if got := trailingEntries(c.cfg, c.bytes, c.avg); got != c.want {
			t.Errorf("trailingEntries(%d, %d, %d) = %d, want %d", c.cfg, c.bytes, c.avg, got, c.want)
		}
	}
}

// TestFSMCountsBytesSinceSnapshot: ApplyBatch counts each entry's data;
// a snapshot, once written, subtracts what was counted when FSM.Snapshot
// ran (entries applied while it was written stay counted) and keeps the
// window's average entry size; a failed one subtracts nothing.
func TestFSMCountsBytesSinceSnapshot(t *testing.T) {
	f := mustFSM(t, mustDB(t))
	e1, e2, e3 := appendEntry(1, "s", "a", "b"), appendEntry(2, "s", "c"), appendEntry(3, "s", "d")
	mustApply(t, f, e1, e2)
	first := uint64(len(e1.Data) + len(e2.Data))
	if b, n := f.sinceSnapshot(); b != first || n != 2 {
		t.Fatalf("after two entries: %d bytes, %d entries; want %d, 2", b, n, first)
	}
	if got := f.avgEntrySize(); got != first/2 {
		t.Fatalf("average %d, want %d (fewer entries than minAvgEntries, no window before)", got, first/2)
	}

	failed, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := failed.Persist(&failingSink{}); err == nil {
		t.Fatal("Persist into a failing sink succeeded")
	}
	if b, _ := f.sinceSnapshot(); b != first {
		t.Fatalf("a failed snapshot moved the count to %d", b)
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, e3) // while the snapshot is written
	if err := snap.Persist(&memSink{}); err != nil {
		t.Fatal(err)
	}
	if b, n := f.sinceSnapshot(); b != uint64(len(e3.Data)) || n != 1 {
		t.Fatalf("after the snapshot: %d bytes, %d entries; want %d, 1 (the entry applied meanwhile)", b, n, len(e3.Data))
	}
	if got := f.prevAvg.Load(); got != first/2 {
		t.Fatalf("the closed window's average is %d, want %d", got, first/2)
	}
	if got := f.avgEntrySize(); got != first/2 {
		t.Fatalf("with one entry in the new window the average is %d, want the last window's %d", got, first/2)
	}
}

type failingSink struct{ memSink }

func (*failingSink) Write([]byte) (int, error) { return 0, ErrStorage }

// TestSnapshotByBytes: with raft's snapshots by count out of reach, 4 MiB
// of 64 KiB entries take at least one snapshot when SnapshotBytes is
// 1 MiB (logged "snapshot by bytes", and the count since then is back
// under 1 MiB), and none with SnapshotBytes off, after the check has run
// over the whole load.
func TestSnapshotByBytes(t *testing.T) {
	const size, load = 64 << 10, 4 << 20
	t.Run("1MiB", func(t *testing.T) {
		rec := testutil.NewLogRecorder(slog.LevelInfo)
		s := bytesSolo(t, rec.Logger(), func(c *Config) { c.SnapshotBytes = 1 << 20 })
		fill(t, s, "e", size, load)
		waitUntil(t, "a snapshot", func() bool { return lastSnapshotIndex(s) != "0" })
		waitUntil(t, "the count since the last snapshot under SnapshotBytes", func() bool {
			b, _ := s.fsm.sinceSnapshot()
			return b <= 1<<20
		})
		logged := rec.Find("snapshot by bytes")
		if len(logged) == 0 {
			t.Fatal(`no "snapshot by bytes" logged`)
		}
		if v, ok := logged[0].Attr("bytes_since_last"); !ok || v.Uint64() <= 1<<20 {
			t.Fatalf("snapshot by bytes logged with %v", logged[0].Attrs)
		}
		t.Logf("%d snapshots by bytes, the first %v; last snapshot index %s", len(logged), logged[0].Attrs, lastSnapshotIndex(s))
	})
	t.Run("off", func(t *testing.T) {
		s := bytesSolo(t, testutil.Quiet(), func(c *Config) { c.SnapshotBytes = math.MaxUint64 })
		fill(t, s, "e", size, load)
		checks := s.snapChecks.Load()
		waitUntil(t, "two more checks", func() bool { return s.snapChecks.Load() >= checks+2 })
		if got := lastSnapshotIndex(s); got != "0" {
			t.Fatalf("a snapshot at %s with SnapshotBytes off", got)
		}
		if b, _ := s.fsm.sinceSnapshot(); b <= load {
			t.Fatalf("%d bytes counted after a load of %d", b, load)
		}
	})
}

// TestTrailingBytesBoundTheLog: after a snapshot, raft keeps about
// TrailingBytes of 32 KiB entries (here 4 MiB: ~127 entries), not
// TrailingLogs (200); with TrailingBytes off it keeps exactly
// TrailingLogs.
func TestTrailingBytesBoundTheLog(t *testing.T) {
	const size, trailingLogs = 32 << 10, 200
	for _, c := range []struct {
		name     string
		trailing uint64
	}{{"4MiB", 4 << 20}, {"off", math.MaxUint64}} {
		t.Run(c.name, func(t *testing.T) {
			s := bytesSolo(t, testutil.Quiet(), func(cfg *Config) {
				cfg.SnapshotBytes, cfg.TrailingBytes, cfg.TrailingLogs = math.MaxUint64, c.trailing, trailingLogs
			})
			n := fill(t, s, "e", size, 260*size)
			if err := s.Snapshot(); err != nil {
				t.Fatal(err)
			}
			first, last := logBounds(t, s)
			kept := last - first + 1
			t.Logf("%d entries of %d bytes; after the snapshot the log holds %d-%d: %d entries, %d bytes",
				n, size, first, last, kept, kept*size)
			if first == 1 {
				t.Fatal("the snapshot compacted nothing")
			}
			if c.trailing == math.MaxUint64 {
				if kept != trailingLogs {
					t.Fatalf("kept %d entries with TrailingBytes off, want TrailingLogs %d", kept, trailingLogs)
				}
				return
			}
			if bytes := kept * size; bytes > 2*c.trailing+minTrailingEntries*size || bytes < c.trailing/2 {
				t.Fatalf("kept %d entries (%d bytes) for TrailingBytes %d", kept, bytes, c.trailing)
			}
			if kept >= trailingLogs {
				t.Fatalf("kept %d entries: TrailingLogs, not the bytes, bound the log", kept)
			}
		})
	}
}

// TestWALStaysBoundedByBytes: under a load of 10 MiB of 16 KiB entries,
// with snapshots by bytes only (1 MiB) and 1.5 MiB of trailing entries,
// DATA/wal/ (256 KiB segments) settles at no more than what it may hold:
// the trailing entries, those since the last snapshot, the segment the
// first of them is in and the preallocated tail.
func TestWALStaysBoundedByBytes(t *testing.T) {
	const size, segment = 16 << 10, 256 << 10
	const snapBytes, trailBytes = 1 << 20, 3 << 19
	s := bytesSolo(t, testutil.Quiet(), func(c *Config) {
		c.LogStore, c.WALSegmentSize = LogStoreWAL, segment
		c.SnapshotBytes, c.TrailingBytes = snapBytes, trailBytes
	})
	fill(t, s, "e", size, 10<<20)
	bound := int64(snapBytes + trailBytes + 2*(segment+segment/8) + 64<<10) // + wal-meta.db
	var n int64
	waitUntil(t, "wal/ within its bound", func() bool {
		_, n, _ = s.LogStoreSize()
		return n <= bound
	})
	first, last := logBounds(t, s)
	t.Logf("wal/ holds %d bytes (bound %d), entries %d-%d, last snapshot %s", n, bound, first, last, lastSnapshotIndex(s))
}

// TestFollowerBehindTrailingBytesInstallsSnapshot: a follower cut off
// while the majority commits 4.8 MiB of 16 KiB entries, snapshotting by
// bytes and keeping 1 MiB (64 entries) after each, is behind the
// majority's logs when it comes back; it catches up by InstallSnapshot
// (the leader streams its event log) and ends with the same chain.
func TestFollowerBehindTrailingBytesInstallsSnapshot(t *testing.T) {
	const size = 16 << 10
	rec := testutil.NewLogRecorder(slog.LevelInfo)
	c := newMemCluster(t, func(i int, cfg *Config) {
		noCountSnapshots(cfg)
		cfg.SnapshotBytes, cfg.TrailingBytes = 2<<20, 1<<20
		cfg.LogStore = LogStoreBolt // compaction deletes exactly what raft drops (see TestFollowerBehindTrailingLogsInstallsSnapshot)
		if i == 2 {
			cfg.Logger = rec.Logger()
		}
	})
	f := c.stores[2]
	c.isolate(2)
	_, behind := logBounds(t, f)
	majority := []int{0, 1}
	const n = 300
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("a%d", i)
		waitUntil(t, "append "+id, func() bool {
			return appendSized(c.stores[c.leader(majority...)], id, size) == nil // ids make a retry harmless
		})
	}
	for _, i := range majority {
		s := c.stores[i]
		waitUntil(t, s.ID()+" compacted past the follower's log", func() bool {
			first, _ := logBounds(t, s)
			return first > behind+1
		})
		first, last := logBounds(t, s)
		t.Logf("%s: log %d-%d, trailing entries %d; the follower's log ends at %d", s.ID(), first, last, s.raft.ReloadableConfig().TrailingLogs, behind)
	}
	c.heal()
	waitUntil(t, "the follower has every event", func() bool {
		si, err := f.cfg.DB.Store("p")
		return err == nil && si.LastSeq == n
	})
	// The FSM logs the restore just after Replace: the events can be seen
	// a moment before. Raft records the installed snapshot after that.
	waitUntil(t, "the follower's raft records the installed snapshot", func() bool {
		return f.Stats()["last_snapshot_index"] != "0"
	})
	if len(rec.Find("restored from snapshot")) == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	sameChain(t, c.stores)
}
