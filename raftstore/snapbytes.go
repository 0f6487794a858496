package raftstore

import (
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Snapshots by bytes (DESIGN.md, Snapshots). raft snapshots every
// SnapshotThreshold entries and keeps TrailingLogs entries after it; a
// group-commit entry holds up to ~1,000 events, so those counts alone let
// the Raft log hold millions of events beside events.db. A local snapshot
// costs about a millisecond (snapshot.go), so the Store also takes one
// whenever the entries applied since the last hold SnapshotBytes of data,
// and sets raft's TrailingLogs so that the entries kept hold about
// TrailingBytes.
const (
	// DefaultSnapshotBytes: a snapshot at least every 256 MiB of log.
	DefaultSnapshotBytes = 256 << 20
	// DefaultTrailingBytes: about 256 MiB of log kept after a snapshot.
	DefaultTrailingBytes = 256 << 20

	// minTrailingEntries is the floor of the trailing entries however
	// big they are (TrailingLogs below it still wins).
	minTrailingEntries = 64
	// minAvgEntries: fewer entries since the last snapshot than this and
	// the average entry size of the window before is used.
	minAvgEntries = 64
	// maxSnapPause bounds the wait between bytes snapshots that fail.
	maxSnapPause = time.Minute
)

// trailingEntries is what raft keeps after a snapshot: cfgTrailing at
// most, and as many entries of avg bytes as trailingBytes holds, but
// not fewer than minTrailingEntries. avg 0 (nothing known) is
// cfgTrailing.
func trailingEntries(cfgTrailing, trailingBytes, avg uint64) uint64 {
	if avg == 0 {
		return cfgTrailing
	}
	return min(cfgTrailing, max(minTrailingEntries, trailingBytes/avg))
}

// snapshotByBytes runs until Close: every snapshotCheck it brings raft's
// TrailingLogs up to date (for raft's own snapshots by count as well)
// and snapshots when the bytes applied since the last exceed
// SnapshotBytes. It waits for the snapshot it asked for, so it never asks
// for another while one runs.
func (s *Store) snapshotByBytes() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.snapshotCheck)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.checkSnapshotBytes()
		s.snapChecks.Add(1)
	}
}

// checkSnapshotBytes is one round of snapshotByBytes.
func (s *Store) checkSnapshotBytes() {
	s.setTrailing(false)
	since, entries := s.fsm.sinceSnapshot()
	if since <= s.cfg.SnapshotBytes || time.Now().Before(s.snapRetry) {
		return
	}
	trailing := s.setTrailing(true)
	start := time.Now()
	err := s.raft.Snapshot().Error()
	switch {
	case err == nil:
		s.snapPause = 0
		s.log.Info("snapshot by bytes", "bytes_since_last", since, "entries_since_last", entries,
			"trailing_entries", trailing, "took", time.Since(start))
	case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown),
		// raft refuses while a configuration change is not yet applied
		// (a member joining); the next round asks again.
		strings.Contains(err.Error(), "wait until the configuration entry"):
		s.log.Debug("snapshot by bytes not taken", "reason", err, "bytes_since_last", since)
	default:
		s.snapPause = min(max(2*s.snapPause, s.cfg.snapshotCheck), maxSnapPause)
		s.snapRetry = time.Now().Add(s.snapPause)
		s.log.Warn("snapshot by bytes failed", "error", err, "bytes_since_last", since, "retry_in", s.snapPause)
	}
}

// setTrailing gives raft the TrailingLogs that TrailingBytes allows at
// the current average entry size, and returns it. Unless forced (just
// before a snapshot), a change of 10% or less is not applied: raft reads
// TrailingLogs only when it compacts after a snapshot, and a reload per
// round would be noise.
func (s *Store) setTrailing(force bool) uint64 {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	avg := s.fsm.avgEntrySize()
	want := trailingEntries(s.cfg.TrailingLogs, s.cfg.TrailingBytes, avg)
	cur := s.trailing
	diff := max(want, cur) - min(want, cur)
	if diff == 0 || !force && diff*10 <= cur {
		return cur
	}
	rc := s.raft.ReloadableConfig()
	rc.TrailingLogs = want
	if err := s.raft.ReloadConfig(rc); err != nil {
		s.log.Warn("setting raft's trailing entries failed", "error", err, "trailing_entries", want)
		return cur
	}
	s.trailing = want
	s.log.Debug("trailing entries", "trailing_entries", want, "was", cur, "avg_entry_bytes", avg)
	return want
}
