package raftstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// countingStore counts the reads that reach the store under the cache,
// and fails StoreLogs while failing is set.
type countingStore struct {
	*raft.InmemStore
	reads   int
	failing bool
}

func (s *countingStore) GetLog(idx uint64, out *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(idx, out)
}

func (s *countingStore) StoreLogs(ls []*raft.Log) error {
	if s.failing {
		return errors.New("disk full")
	}
	return s.InmemStore.StoreLogs(ls)
}

func sizedLogs(from, to uint64, size int) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return ls
}

// getAll reads from..to through the cache and returns how many of those
// reads reached the store; every entry must carry its own data.
func getAll(t *testing.T, c *logCache, s *countingStore, from, to uint64) int {
	t.Helper()
	before := s.reads
	for i := from; i <= to; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if l.Index != i || len(l.Data) == 0 || l.Data[0] != byte(i) {
			t.Fatalf("GetLog(%d) returned index %d, data %.4x", i, l.Index, l.Data)
		}
	}
	return s.reads - before
}

func TestLogCacheBoundedByBytesAndCount(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s, 8, 10*(1000+64))
	if err := c.StoreLogs(sizedLogs(1, 20, 1000)); err != nil {
		t.Fatal(err)
	}
	// 10 entries would fit the bytes; the count (8) binds.
	if n, b := c.cached(); n != 8 || b != 8*(1000+64) {
		t.Fatalf("cached %d entries, %d bytes; want 8, %d", n, b, 8*(1000+64))
	}
	if got := getAll(t, c, s, 13, 20); got != 0 {
		t.Fatalf("%d of the newest 8 reads reached the store", got)
	}
	if got := getAll(t, c, s, 1, 12); got != 12 {
		t.Fatalf("%d of 12 older reads reached the store, want all", got)
	}

	// Bigger entries: the bytes bind (3 of 3,000 bytes in 10,640).
	if err := c.StoreLogs(sizedLogs(21, 25, 3000)); err != nil {
		t.Fatal(err)
	}
	if n, b := c.cached(); n != 3 || b > 10*(1000+64) {
		t.Fatalf("cached %d entries, %d bytes; want 3 within %d", n, b, 10*(1000+64))
	}
	if got := getAll(t, c, s, 23, 25); got != 0 {
		t.Fatalf("%d of the newest 3 reads reached the store", got)
	}
	if got := getAll(t, c, s, 21, 22); got != 2 {
		t.Fatalf("%d of 2 evicted reads reached the store", got)
	}

	// An entry larger than the whole budget is stored, not cached, and
	// leaves nothing older cached either (the run must stay contiguous).
	if err := c.StoreLogs(sizedLogs(26, 26, 20000)); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.cached(); n != 0 {
		t.Fatalf("cached %d entries after an oversized one", n)
	}
	if got := getAll(t, c, s, 26, 26); got != 1 {
		t.Fatal("the oversized entry was not read from the store")
	}
}

func TestLogCacheStaysConsistent(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s, 512, 1<<20)
	if err := c.StoreLogs(sizedLogs(1, 10, 100)); err != nil {
		t.Fatal(err)
	}

	// A follower's conflicting tail: raft deletes 6..10, then stores new
	// entries from 6 in a new term. No read may see the old ones.
	if err := c.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.cached(); n != 0 {
		t.Fatalf("DeleteRange left %d entries cached", n)
	}
	fresh := sizedLogs(6, 8, 100)
	for _, l := range fresh {
		l.Term = 2
	}
	if err := c.StoreLogs(fresh); err != nil {
		t.Fatal(err)
	}
	for i := uint64(6); i <= 8; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Term != 2 {
			t.Fatalf("GetLog(%d) = term %d, %v; want the new term 2", i, l.Term, err)
		}
	}

	// An entry that does not follow the newest cached one restarts the
	// cache (a snapshot installed: the log continues further on).
	if err := c.StoreLogs(sizedLogs(100, 101, 100)); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.cached(); n != 2 {
		t.Fatalf("cached %d entries after a gap, want the 2 new ones", n)
	}
	if got := getAll(t, c, s, 100, 101); got != 0 {
		t.Fatalf("%d reads of the new run reached the store", got)
	}

	// A failed write caches nothing and drops what might be stale.
	s.failing = true
	if err := c.StoreLogs(sizedLogs(102, 103, 100)); err == nil {
		t.Fatal("StoreLogs succeeded on a failing store")
	}
	if n, _ := c.cached(); n != 0 {
		t.Fatalf("cached %d entries after a failed write", n)
	}
	var l raft.Log
	if err := c.GetLog(102, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog of an entry the store refused: %v", err)
	}
}
