package raftstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/herald-io/herald/internal/testutil"
)

// sealTailBehindMeta leaves the WAL in dir as a crash right after the
// append that sealed its tail segment leaves it: the segment's index is
// written and fsynced, the metadata still calls it the open tail.
func sealTailBehindMeta(t *testing.T, dir string) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	ps, err := meta.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta.Close()
	tail := ps.Segments[len(ps.Segments)-1]
	if !tail.SealTime.IsZero() {
		t.Fatalf("tail %+v is sealed already", tail)
	}
	sw, err := segment.NewFiler(dir, walfs.New()).RecoverTail(tail)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.ForceSeal(); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWALRepairsSealedTail: raft-wal alone never appends again to a WAL
// whose tail was sealed on disk but not in its metadata; walStore records
// the seal and goes on, with every entry.
func TestWALRepairsSealedTail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), walDir)
	s := openTestStore(t, filepath.Dir(dir), LogStoreWAL, 64<<10)
	fillStore(t, s, 1, 300)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sealTailBehindMeta(t, dir)

	// What raft-wal does with it on its own (in a copy).
	copyDir := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	raw, err := raftwal.Open(copyDir, raftwal.WithSegmentSize(64<<10), raftwal.WithLogger(quietHCLog()))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.StoreLogs([]*raft.Log{testEntry(301, 4)}); !errors.Is(err, raftwal.ErrSealed) {
		t.Fatalf("raft-wal v0.4.2 alone appended to a sealed tail (%v): the repair may no longer be needed", err)
	}
	raw.Close()

	s = openTestStore(t, filepath.Dir(dir), LogStoreWAL, 64<<10)
	checkStore(t, s, 1, 300)
	if err := s.StoreLogs([]*raft.Log{testEntry(301, 4)}); err != nil {
		t.Fatalf("append after the repair: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, filepath.Dir(dir), LogStoreWAL, 64<<10)
	defer s.Close()
	if f, l, err := bounds(s); err != nil || f != 1 || l != 301 {
		t.Fatalf("after the repair and a reopen: %d-%d %v", f, l, err)
	}
}

// TestWALRecoversFromAFullDisk runs the WAL on a 1 MB tmpfs (needs root
// to mount; skipped otherwise) until creating the next segment fails,
// grows the file system, and checks that appends resume in the same
// process (walStore opens the WAL again) with every entry acknowledged
// before kept.
func TestWALRecoversFromAFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := openTestStore(t, dir, LogStoreWAL, 128<<10)
	defer s.Close()
	ws := s.(*walStore)
	data := make([]byte, 4000)
	var acked uint64
	var failure error
	for i := uint64(1); i < 10000 && failure == nil; i++ {
		failure = s.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: data}})
		if failure == nil {
			acked = i
		}
	}
	if failure == nil {
		t.Fatal("1 MB never filled up")
	}
	t.Logf("disk full after %d entries: %v", acked, failure)
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	testutil.WaitFor(t, 10*time.Second, "appends work again", func() bool {
		return s.StoreLogs([]*raft.Log{{Index: acked + 1, Term: 1, Type: raft.LogCommand, Data: data}}) == nil
	})
	if ws.reopenCnt == 0 {
		t.Fatal("appends resumed without a reopen: the full disk did not hit a rotation")
	}
	for i := uint64(1); i <= acked+1; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil || len(l.Data) != len(data) {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	for i := acked + 2; i < acked+100; i++ {
		if err := s.StoreLogs([]*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: data}}); err != nil {
			t.Fatalf("append %d after the recovery: %v", i, err)
		}
	}
}
