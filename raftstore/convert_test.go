package raftstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
)

// boltDir is a data dir holding a raft.db with entries first..2500 (more
// than two batches of the copy) and the stable keys.
func boltDir(t *testing.T, first uint64) string {
	t.Helper()
	dir := t.TempDir()
	s := openTestStore(t, dir, LogStoreBolt, 0)
	fillStore(t, s, 1, 2500)
	if first > 1 {
		if err := s.DeleteRange(1, first-1); err != nil { // compacted by a snapshot
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkConverted fails unless dir holds only a store of kind with
// entries first..2500, and nothing a conversion leaves while it runs.
func checkConverted(t *testing.T, dir, kind string, first uint64) {
	t.Helper()
	if got, err := ChooseLogStore(dir, ""); err != nil || got != kind {
		t.Fatalf("ChooseLogStore = %q, %v; want %q", got, err, kind)
	}
	for _, p := range []string{storePath(dir, otherStore(kind)), filepath.Join(dir, convertingFile), convertTempPath(dir, LogStoreBolt), convertTempPath(dir, LogStoreWAL)} {
		if exists(p) {
			t.Fatalf("%s is left after the conversion", p)
		}
	}
	s := openTestStore(t, dir, kind, 0)
	defer s.Close()
	checkStore(t, s, first, 2500)
}

// TestConvertLogStore: raft.db to wal and back copies every entry (of a
// compacted log too) and the stable keys, keeps the old store as a
// backup, and a second run changes nothing.
func TestConvertLogStore(t *testing.T) {
	for _, first := range []uint64{1, 701} {
		t.Run(fmt.Sprintf("from %d", first), func(t *testing.T) {
			dir := boltDir(t, first)
			res, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			want := ConvertResult{From: LogStoreBolt, To: LogStoreWAL, First: first, Last: 2500, Entries: 2501 - first, CurrentTerm: 27, Backup: res.Backup}
			if res != want {
				t.Fatalf("result %+v, want %+v", res, want)
			}
			if filepath.Dir(res.Backup) != dir || !exists(res.Backup) {
				t.Fatalf("backup %q", res.Backup)
			}
			checkConverted(t, dir, LogStoreWAL, first)
			// The backup is the old store, untouched.
			b, err := openLogStore(res.Backup, LogStoreBolt, 0, quietHCLog())
			if err != nil {
				t.Fatal(err)
			}
			checkStore(t, b, first, 2500)
			b.Close()

			again, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet())
			if err != nil || !again.AlreadyDone {
				t.Fatalf("second run: %+v, %v", again, err)
			}
			checkConverted(t, dir, LogStoreWAL, first)

			back, err := ConvertLogStore(dir, LogStoreBolt, testutil.Quiet())
			if err != nil || back.From != LogStoreWAL || back.Entries != 2501-first || back.CurrentTerm != 27 {
				t.Fatalf("back to bolt: %+v, %v", back, err)
			}
			checkConverted(t, dir, LogStoreBolt, first)
		})
	}
}

// TestConvertLogStoreKilled stops the conversion after each of its steps
// as a kill -9 would (no clean-up): until the old store is renamed away
// the dir still opens on it with every entry, and running the conversion
// again finishes it.
func TestConvertLogStoreKilled(t *testing.T) {
	t.Cleanup(func() { convertHook = nil })
	for _, step := range []string{"marked", "batch", "copied", "renamed", "committed"} {
		t.Run(step, func(t *testing.T) {
			dir := boltDir(t, 1)
			convertHook = func(s string) bool { return s == step }
			if _, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet()); !errors.Is(err, errConvertKilled) {
				t.Fatalf("killed at %s: %v", step, err)
			}
			convertHook = nil
			want := LogStoreBolt
			if step == "committed" {
				want = LogStoreWAL
			}
			kind, err := ChooseLogStore(dir, "")
			if err != nil || kind != want {
				t.Fatalf("after a kill at %s: ChooseLogStore = %q, %v; want %q", step, kind, err, want)
			}
			if _, err := ChooseLogStore(dir, otherStore(want)); !errors.Is(err, ErrLogStore) {
				t.Fatalf("after a kill at %s, --raft-log-store %s: %v", step, otherStore(want), err)
			}
			s := openTestStore(t, dir, kind, 0)
			checkStore(t, s, 1, 2500)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			res, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet())
			if err != nil || res.AlreadyDone != (step == "committed") {
				t.Fatalf("run again after a kill at %s: %+v, %v", step, res, err)
			}
			checkConverted(t, dir, LogStoreWAL, 1)
		})
	}
}

// TestConvertLogStoreRefuses: a dir with both stores (and no unfinished
// conversion), or with none, is refused and left as it was.
func TestConvertLogStoreRefuses(t *testing.T) {
	dir := boltDir(t, 1)
	openTestStore(t, dir, LogStoreWAL, 0).Close()
	if _, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet()); !errors.Is(err, ErrLogStore) {
		t.Fatalf("both stores: %v", err)
	}
	s := openTestStore(t, dir, LogStoreBolt, 0)
	checkStore(t, s, 1, 2500)
	s.Close()
	if _, err := ConvertLogStore(t.TempDir(), LogStoreWAL, testutil.Quiet()); !errors.Is(err, ErrNoState) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := ConvertLogStore(dir, "rocks", testutil.Quiet()); !errors.Is(err, ErrLogStore) {
		t.Fatalf("unknown store: %v", err)
	}
}

// TestConvertedNodeStarts: a single node on bolt, converted, starts on
// wal alone, in the same term, with its events, and takes writes.
func TestConvertedNodeStarts(t *testing.T) {
	dir, db := t.TempDir(), mustDB(t)
	open := func(kind string) *Store {
		s, err := New(Config{ID: "n1", Dir: dir, Bind: "127.0.0.1:0", DB: db, Logger: testutil.Quiet(), Bootstrap: true, LogStore: kind})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "n1 leads", s.IsLeader)
		return s
	}
	s := open(LogStoreBolt)
	for i := 0; i < 20; i++ {
		if err := appendOne(s, fmt.Sprintf("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	term, last := s.Term(), s.raft.LastIndex()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := ConvertLogStore(dir, LogStoreWAL, testutil.Quiet())
	if err != nil || res.CurrentTerm != term || res.Last != last {
		t.Fatalf("convert: %+v, %v (term %d, last index %d)", res, err, term, last)
	}
	s = open("")
	defer s.Close()
	if s.LogStore() != LogStoreWAL {
		t.Fatalf("runs on %q", s.LogStore())
	}
	if s.Term() < term || s.raft.LastIndex() < last {
		t.Fatalf("term %d (was %d), last index %d (was %d)", s.Term(), term, s.raft.LastIndex(), last)
	}
	if err := appendOne(s, "after"); err != nil {
		t.Fatal(err)
	}
	if si, err := db.Store("p"); err != nil || si.LastSeq != 21 {
		t.Fatalf("store after the conversion: %+v, %v", si, err)
	}
}
