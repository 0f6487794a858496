package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// openSolo opens a single-node Store on dir over TCP at addr (bootstrapped
// on first use), and waits until it leads.
func openSolo(t *testing.T, dir, addr string, db *hlog.DB, logger *slog.Logger) *Store {
	t.Helper()
	if logger == nil {
		logger = testutil.Quiet()
	}
	return startSolo(t, Config{ID: "solo", Dir: dir, Bind: addr, DB: db, Logger: logger, Bootstrap: true,
		SnapshotInterval: time.Hour, TrailingLogs: 16})
}

// startSolo opens a bootstrapping single-node Store with cfg, closed on
// cleanup, and waits until it leads.
func startSolo(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitUntil(t, cfg.ID+" leads", s.IsLeader)
	return s
}

var payload = `"` + strings.Repeat("x", 500) + `"`

// appendEvents appends n events to store p, 100 to a Raft entry.
func appendEvents(t *testing.T, s *Store, n int) {
	t.Helper()
	for n > 0 {
		k := min(n, 100)
		evs := make([]hlog.NewEvent, k)
		for i := range evs {
			evs[i] = hlog.NewEvent{ID: fmt.Sprintf("%d-%d", time.Now().UnixNano(), i), Type: "t", Version: "1", Timestamp: 1, Data: []byte(payload)}
		}
		res, err := s.ApplyAppend([]AppendRequest{{Store: "p", Events: evs}}).Wait()
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// snapshotFiles lists the files DATA/snapshots holds (relative path →
// size).
func snapshotFiles(t *testing.T, dataDir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(dataDir, snapshotDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we looked (a live node's reap)
		}
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = st.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func total(files map[string]int64) (n int64, states int) {
	for p, sz := range files {
		n += sz
		if filepath.Base(p) == snapStateFile {
			states++
		}
	}
	return n, states
}

// newestMeta returns the newest snapshot's metadata and the size of its
// meta.json.
func newestMeta(t *testing.T, dataDir string) (*snapMeta, int64) {
	t.Helper()
	st := &snapshotStore{dir: filepath.Join(dataDir, snapshotDir), log: testutil.Quiet()} // reads only
	all, err := st.all()
	if err != nil || len(all) == 0 {
		t.Fatalf("no snapshot in %s: %v", dataDir, err)
	}
	fi, err := os.Stat(filepath.Join(dataDir, snapshotDir, all[0].ID, snapMetaFile))
	if err != nil {
		t.Fatal(err)
	}
	return all[0], fi.Size()
}

// TestSnapshotSizeDoesNotGrowWithTheLog: a snapshot at 100 events and one
// at 5,000 (50 times the event log) write the same few hundred bytes, no
// state file; a restart after them keeps every event and goes on.
func TestSnapshotSizeDoesNotGrowWithTheLog(t *testing.T) {
	dir, addr, db := t.TempDir(), testutil.LoopbackAddr(t), mustDB(t)
	s := openSolo(t, dir, addr, db, nil)
	sizes, logSizes := map[int]int64{}, map[int]int64{}
	for _, n := range []int{100, 5000} {
		si, _ := db.Store("p")
		appendEvents(t, s, n-int(si.LastSeq))
		if err := s.Snapshot(); err != nil {
			t.Fatal(err)
		}
		m, size := newestMeta(t, dir)
		files := snapshotFiles(t, dir)
		all, states := total(files)
		logSize, err := db.WriteTo(io.Discard) // what a full snapshot would copy
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d events: event log %d bytes; newest snapshot %s meta.json %d bytes; snapshots/ %d bytes in %d files",
			n, logSize, m.ID, size, all, len(files))
		logSizes[n] = logSize
		if !m.metadataOnly() || states != 0 || all > 4096 {
			t.Fatalf("at %d events: snapshot %+v, %d state files, %d bytes under snapshots/", n, m, states, all)
		}
		sizes[n] = size
	}
	if logSizes[5000] < 10*logSizes[100] {
		t.Fatalf("the event log did not grow: %v", logSizes)
	}
	if d := sizes[5000] - sizes[100]; d < -8 || d > 8 {
		t.Fatalf("meta.json grew from %d to %d bytes with the log", sizes[100], sizes[5000])
	}

	s.Close()
	s = openSolo(t, dir, addr, db, nil)
	if si, _ := db.Store("p"); si.LastSeq != 5000 {
		t.Fatalf("after a restart: %d events", si.LastSeq)
	}
	appendEvents(t, s, 1)
	if si, _ := db.Store("p"); si.LastSeq != 5001 {
		t.Fatalf("after a restart and an append: %d events", si.LastSeq)
	}
}

// TestFollowerBehindTrailingLogsInstallsSnapshot partitions a follower,
// commits past the leader's TrailingLogs, snapshots and truncates the
// majority's logs, commits more after the snapshot, and heals. The
// follower can only catch up by InstallSnapshot; the state it receives is
// the leader's current log (newer than the snapshot's index), so the FSM
// must skip the entries after the snapshot that it already holds. It ends
// with the same head hash, keeps no full copy, and applies what comes next.
func TestFollowerBehindTrailingLogsInstallsSnapshot(t *testing.T) {
	rec := testutil.NewLogRecorder(slog.LevelInfo)
	c := newMemCluster(t, func(i int, cfg *Config) {
		cfg.TrailingLogs, cfg.SnapshotThreshold, cfg.SnapshotInterval = 16, 32, time.Hour
		// On the WAL the leader's open segment keeps entries readable past
		// the trailing ones, so the follower would catch up from the log:
		// bolt deletes exactly what compaction drops.
		cfg.LogStore = LogStoreBolt
		if i == 2 {
			cfg.Logger = rec.Logger()
		}
	})
	c.isolate(2)
	majority := []int{0, 1}
	appendVia := func(id string) {
		t.Helper()
		waitUntil(t, "append "+id, func() bool {
			return appendOne(c.stores[c.leader(majority...)], id) == nil // ids make a retry harmless
		})
	}
	for i := 0; i < 200; i++ {
		appendVia(fmt.Sprintf("a%d", i))
	}
	for _, i := range majority { // whichever leads after the heal has truncated
		if err := c.stores[i].Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		appendVia(fmt.Sprintf("b%d", i))
	}
	c.heal()
	f := c.stores[2]
	waitUntil(t, "the follower has every event", func() bool {
		si, err := f.cfg.DB.Store("p")
		return err == nil && si.LastSeq == 250
	})
	// Raft records the installed snapshot just after the FSM restored it.
	waitUntil(t, "the follower's raft records the installed snapshot", func() bool {
		return f.Stats()["last_snapshot_index"] != "0"
	})
	restored := rec.Find("restored from snapshot")
	if len(restored) == 0 {
		t.Fatal("no snapshot was restored")
	}
	m, _ := newestMeta(t, f.cfg.Dir)
	got := restored[len(restored)-1].Attrs
	t.Logf("installed snapshot %s (index %d): restored state %v", m.ID, m.Index, got)
	if v, ok := restored[len(restored)-1].Attr("applied_index"); !ok || v.Uint64() <= m.Index {
		t.Fatalf("the state installed is not newer than the snapshot's index %d: %v", m.Index, got)
	}
	// The full copy goes once the restore is done with it.
	waitUntil(t, "the follower keeps no full copy after the install", func() bool {
		_, states := total(snapshotFiles(t, f.cfg.Dir))
		return states == 0
	})
	appendVia("after")
	for _, s := range c.stores {
		waitUntil(t, s.ID()+" at 251", func() bool {
			si, err := s.cfg.DB.Store("p")
			return err == nil && si.LastSeq == 251
		})
	}
	sameChain(t, c.stores)
}

// sameChain fails unless every store's event log holds store p with one
// head hash and a chain that verifies.
func sameChain(t *testing.T, stores []*Store) {
	t.Helper()
	var head string
	for _, s := range stores {
		si, err := s.cfg.DB.Store("p")
		if err != nil {
			t.Fatalf("%s: %v", s.ID(), err)
		}
		if head == "" {
			head = si.HeadHash
		} else if si.HeadHash != head {
			t.Fatalf("%s head %s, want %s", s.ID(), si.HeadHash, head)
		}
		if err := s.cfg.DB.VerifyChain("p"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoverWithMetadataSnapshots: herald recover on a data dir whose
// newest snapshot is metadata only restores nothing (the live events.db
// is kept, the same file), applies the log after it, and records the new
// configuration in another metadata snapshot; the node then leads alone
// on its new address with every event. With events.db lost, recover
// refuses with ErrEventLogLost and changes nothing.
func TestRecoverWithMetadataSnapshots(t *testing.T) {
	dir, db := t.TempDir(), mustDB(t)
	s := openSolo(t, dir, testutil.LoopbackAddr(t), db, nil)
	appendEvents(t, s, 3000)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, 500) // in the log only
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(db.Path())

	addr := testutil.LoopbackAddr(t)
	servers := []Server{{ID: "solo", Addr: addr, Suffrage: "voter"}}
	if err := Recover(dir, mustDB(t), testutil.Quiet(), servers); !errors.Is(err, ErrEventLogLost) {
		t.Fatalf("recover without the event log: %v", err)
	}
	if err := Recover(dir, db, testutil.Quiet(), servers); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(db.Path())
	if !os.SameFile(before, after) {
		t.Fatal("recover replaced events.db (restored the log from itself)")
	}
	if m, _ := newestMeta(t, dir); !m.metadataOnly() || len(m.Configuration.Servers) != 1 || string(m.Configuration.Servers[0].Address) != addr {
		t.Fatalf("newest snapshot after recover: %+v", m)
	}
	if _, states := total(snapshotFiles(t, dir)); states != 0 {
		t.Fatalf("recover wrote a full copy: %v", snapshotFiles(t, dir))
	}
	s = openSolo(t, dir, addr, db, nil)
	if si, _ := db.Store("p"); si.LastSeq != 3500 {
		t.Fatalf("after recover: %d events", si.LastSeq)
	}
	appendEvents(t, s, 1)
	if servers, err := s.Servers(); err != nil || len(servers) != 1 || servers[0].Addr != addr {
		t.Fatalf("configuration after recover: %+v %v", servers, err)
	}
}

// legacySnapshot writes what the previous release's FileSnapshotStore
// wrote (meta.json with a CRC, and state.bin: the whole event log), with
// raft's own FileSnapshotStore.
func legacySnapshot(t *testing.T, dir string, db *hlog.DB, addr string) {
	t.Helper()
	idx, term, err := db.Applied()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLogger(testutil.Quiet(), "raft"))
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	conf := raft.Configuration{Servers: []raft.Server{{ID: "solo", Address: raft.ServerAddress(addr), Suffrage: raft.Voter}}}
	sink, err := fs.Create(1, idx, term, conf, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTo(sink); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFromFullSnapshotDir: a data dir of the previous release holds
// a full FileSnapshotStore snapshot. With its events.db current, the node
// starts, keeps every event and deletes the full copy (events.db covers
// it); later snapshots are metadata only. With its events.db lost, the
// node restores the log from that full copy (read through), then drops it.
func TestUpgradeFromFullSnapshotDir(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "current", true: "lost"}[lost], func(t *testing.T) {
			dir, addr, db := t.TempDir(), testutil.LoopbackAddr(t), mustDB(t)
			s := openSolo(t, dir, addr, db, nil)
			appendEvents(t, s, 2000)
			s.Close()
			legacySnapshot(t, dir, db, addr)
			if _, states := total(snapshotFiles(t, dir)); states != 1 {
				t.Fatalf("legacy layout: %v", snapshotFiles(t, dir))
			}
			if lost {
				db = mustDB(t)
			}
			s = openSolo(t, dir, addr, db, nil)
			if si, err := db.Store("p"); err != nil || si.LastSeq != 2000 {
				t.Fatalf("after the upgrade: %+v %v", si, err)
			}
			files := snapshotFiles(t, dir)
			if _, states := total(files); states != 0 {
				t.Fatalf("the full copy is still there: %v", files)
			}
			appendEvents(t, s, 1)
			if err := s.Snapshot(); err != nil {
				t.Fatal(err)
			}
			files = snapshotFiles(t, dir)
			if n, states := total(files); states != 0 || n > 4096 {
				t.Fatalf("a snapshot after the upgrade: %v", files)
			}
			if si, _ := db.Store("p"); si.LastSeq != 2001 {
				t.Fatalf("%d events", si.LastSeq)
			}
		})
	}
}

// metaSnapshot takes a metadata snapshot of f into st at raft index idx.
func metaSnapshot(t *testing.T, st *snapshotStore, f *fsm, idx uint64) string {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := st.Create(1, idx, 1, raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a:1", Suffrage: raft.Voter}}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

// TestOpenStreamsTheCurrentLogAsABboltFile: Open of a metadata snapshot
// streams the log as it is now (past the snapshot), exactly meta.Size
// bytes. That stream is the same format the previous release sent: an
// old follower (raft's FileSnapshotStore receiving it, the old FSM
// replacing its log with it) ends with the leader's log.
func TestOpenStreamsTheCurrentLogAsABboltFile(t *testing.T) {
	src := mustDB(t)
	f := mustFSM(t, src)
	mustApply(t, f, appendEntry(1, "s", "a"), appendEntry(2, "s", "b"))
	st, err := newSnapshotStore(t.TempDir(), src, testutil.Quiet(), false)
	if err != nil {
		t.Fatal(err)
	}
	id := metaSnapshot(t, st, f, 2)
	mustApply(t, f, appendEntry(3, "s", "c"))

	meta, rc, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Index != 2 || meta.Size <= metaHeaderLen {
		t.Fatalf("meta %+v", meta)
	}
	// What an old follower does with an InstallSnapshot (raft.go
	// installSnapshot: copy into its store, compare with req.Size).
	old, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 2, newHCLogger(testutil.Quiet(), "raft"))
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("")
	sink, err := old.Create(1, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, trans)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(sink, rc)
	rc.Close()
	if err != nil || n != meta.Size {
		t.Fatalf("copied %d of %d bytes: %v", n, meta.Size, err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, state, err := old.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	dst := mustDB(t)
	err = dst.Replace(state) // the old release's FSM.Restore
	state.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := src.Store("s")
	b, _ := dst.Store("s")
	if b.LastSeq != 3 || a.HeadHash != b.HeadHash {
		t.Fatalf("old follower after the install: %+v, leader %+v", b, a)
	}
	if idx, _, _ := dst.Applied(); idx != 3 {
		t.Fatalf("installed state at %d, want 3 (newer than the snapshot's 2)", idx)
	}
}

// TestReplaceInterruptsASnapshotStream: a stream to a follower that has
// stopped reading holds a read transaction; a Replace (this node
// installing a snapshot itself) interrupts it instead of waiting, and a
// later Open streams the new log.
func TestReplaceInterruptsASnapshotStream(t *testing.T) {
	db := mustDB(t)
	f := mustFSM(t, db)
	for i := uint64(1); i <= 20; i++ {
		mustApply(t, f, appendEntry(i, "s", fmt.Sprintf("e%d", i)))
	}
	st, err := newSnapshotStore(t.TempDir(), db, testutil.Quiet(), false)
	if err != nil {
		t.Fatal(err)
	}
	id := metaSnapshot(t, st, f, 20)
	_, rc, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}

	other := mustDB(t)
	g := mustFSM(t, other)
	for i := uint64(1); i <= 30; i++ {
		mustApply(t, g, appendEntry(i, "s", fmt.Sprintf("o%d", i)))
	}
	var state bytes.Buffer
	if _, err := other.WriteTo(&state); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Replace(&state) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the Replace waited behind a stalled snapshot stream")
	}
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, hlog.ErrInterrupted) {
		t.Fatalf("the interrupted stream ended with %v", err)
	}
	meta, rc2, err := st.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	var got bytes.Buffer
	if n, err := io.Copy(&got, rc2); err != nil || n != meta.Size {
		t.Fatalf("stream after the Replace: %d of %d bytes: %v", n, meta.Size, err)
	}
	dst := mustDB(t)
	if err := dst.Replace(&got); err != nil {
		t.Fatal(err)
	}
	if si, _ := dst.Store("s"); si.LastSeq != 30 {
		t.Fatalf("the stream after the Replace holds %d events, want the new log's 30", si.LastSeq)
	}
}

// TestSnapshotStoreKeepsNoFullCopies: a full snapshot (received from a
// leader) is reaped by a newer metadata one; two snapshots are kept;
// what an interrupted snapshot left is removed on open; a metadata
// snapshot the log is behind is refused with ErrEventLogLost.
func TestSnapshotStoreKeepsNoFullCopies(t *testing.T) {
	base := t.TempDir()
	db := mustDB(t)
	f := mustFSM(t, db)
	mustApply(t, f, appendEntry(1, "s", "a"))
	st, err := newSnapshotStore(base, db, testutil.Quiet(), false)
	if err != nil {
		t.Fatal(err)
	}
	// A full snapshot at index 5, past the log (a leader's, not yet
	// restored): kept as it is.
	sink, err := st.Create(1, 5, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTo(sink); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if _, states := total(snapshotFiles(t, base)); states != 1 {
		t.Fatalf("the received full snapshot: %v", snapshotFiles(t, base))
	}
	if id, err := st.behind(1); err != nil || id != sink.ID() {
		t.Fatalf("behind a full snapshot: %q %v (want its id, to restore from)", id, err)
	}
	mustApply(t, f, appendEntry(6, "s", "b"))
	for i := uint64(7); i <= 9; i++ {
		metaSnapshot(t, st, f, i)
	}
	files := snapshotFiles(t, base)
	if _, states := total(files); states != 0 || len(files) != snapRetain {
		t.Fatalf("after three metadata snapshots: %v", files)
	}
	list, err := st.List()
	if err != nil || len(list) != 2 || list[0].Index != 9 || list[1].Index != 8 {
		t.Fatalf("List: %+v %v", list, err)
	}

	if err := os.MkdirAll(filepath.Join(base, snapshotDir, "1-99-1"+snapTmpSuffix), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := newSnapshotStore(base, db, testutil.Quiet(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, snapshotDir, "1-99-1"+snapTmpSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted snapshot's directory survived: %v", err)
	}

	empty := mustDB(t)
	st2, err := newSnapshotStore(base, empty, testutil.Quiet(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st2.Open(list[0].ID); !errors.Is(err, ErrEventLogLost) {
		t.Fatalf("Open with the log behind: %v", err)
	}
	if _, err := st2.behind(0); !errors.Is(err, ErrEventLogLost) || !strings.Contains(err.Error(), "herald restore") {
		t.Fatalf("behind: %v", err)
	}
}
