package raftstore

import (
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest Raft log entries in memory in front of the
// log store, as raft.LogCache does, but bounded by bytes as well as by
// count. raft's cache keeps a fixed number of entries; Herald's entries
// are group-commit batches of up to ~1,000 events, so 512 of them held
// hundreds of MB per node (the leader's heap peaked at ~450 MB RssAnon
// in the black-box batch run, issue 13). The leader reads the entries
// it just wrote to replicate them, and a follower reads those it just
// received to apply them: both are the newest few MB.
//
// It holds a contiguous run of indexes, oldest first. StoreLogs writes
// through to the store first and caches only what the store took; an
// entry that does not follow the newest cached one (raft rewrote a
// follower's conflicting tail, or a snapshot was installed) empties the
// cache first; DeleteRange empties it.
type logCache struct {
	raft.LogStore
	maxEntries int
	maxBytes   int

	mu      sync.Mutex
	entries []*raft.Log // contiguous indexes, oldest first
	bytes   int
}

// Default bounds: raft's own count, and 32 MiB (about a second of log at
// the 30 MB/s that eight clients of 500-event batches write here).
const (
	logCacheEntries = 512
	logCacheBytes   = 32 << 20
)

func newLogCache(store raft.LogStore, maxEntries, maxBytes int) *logCache {
	return &logCache{LogStore: store, maxEntries: maxEntries, maxBytes: maxBytes}
}

func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) + 64 }

func (c *logCache) GetLog(idx uint64, out *raft.Log) error {
	c.mu.Lock()
	if n := len(c.entries); n > 0 {
		first := c.entries[0].Index
		if idx >= first && idx-first < uint64(n) {
			*out = *c.entries[idx-first]
			c.mu.Unlock()
			return nil
		}
	}
	c.mu.Unlock()
	return c.LogStore.GetLog(idx, out)
}

func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

func (c *logCache) StoreLogs(ls []*raft.Log) error {
	if err := c.LogStore.StoreLogs(ls); err != nil {
		// What the store took is unknown: cache nothing of it, and
		// nothing that might now be stale.
		c.reset()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range ls {
		if n := len(c.entries); n > 0 && c.entries[n-1].Index+1 != l.Index {
			c.clearLocked()
		}
		size := entrySize(l)
		if size > c.maxBytes {
			c.clearLocked() // too big to cache; what follows must still be contiguous
			continue
		}
		c.entries = append(c.entries, l)
		c.bytes += size
		drop := 0
		for c.bytes > c.maxBytes || len(c.entries)-drop > c.maxEntries {
			c.bytes -= entrySize(c.entries[drop])
			c.entries[drop] = nil
			drop++
		}
		if drop > 0 {
			c.entries = c.entries[drop:]
		}
	}
	// No compaction of the backing array is needed: the dropped head
	// shortens its capacity, and append copies only the live entries
	// when it reallocates.
	return nil
}

func (c *logCache) DeleteRange(min, max uint64) error {
	c.reset()
	return c.LogStore.DeleteRange(min, max)
}

// IsMonotonic passes raft.MonotonicLogStore through, as raft.LogCache
// does.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// cached reports the entries and bytes held (tests, metrics).
func (c *logCache) cached() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

func (c *logCache) reset() {
	c.mu.Lock()
	c.clearLocked()
	c.mu.Unlock()
}

func (c *logCache) clearLocked() {
	clear(c.entries)
	c.entries = c.entries[:0]
	c.bytes = 0
}
