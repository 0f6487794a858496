package raftstore

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Sentinel errors. Nothing above this package sees raft's own errors.
var (
	// ErrNotLeader means this node is not the leader; the write was not
	// taken. The caller may forward it to the leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrLeadershipLost means leadership was lost while the entry was in
	// flight: it may or may not be committed. Retry with the same ids.
	ErrLeadershipLost = errors.New("leadership lost while committing")
	// ErrShutdown means the store is closed.
	ErrShutdown = errors.New("raft store is shut down")
	// ErrTimeout means the operation did not finish in time.
	ErrTimeout = errors.New("raft operation timed out")
	// ErrBadCommand means a command could not be decoded; it is a bug or
	// a version mismatch, never a client error.
	ErrBadCommand = errors.New("bad raft command")
	// ErrRefused means the event log refused a committed entry's data for
	// a reason every replica meets alike (a key or value over bbolt's
	// limits): the entry had no effect anywhere.
	ErrRefused = errors.New("refused by the event log's limits")
	// ErrNotFound means a server id is not in the configuration.
	ErrNotFound = errors.New("server not found")
	// ErrStorage means a write to the Raft log failed (disk full,
	// read-only, I/O error): nothing was committed; the node keeps trying.
	ErrStorage = errors.New("storage failure")
	// ErrNoState means a data dir holds no Raft log store (neither raft.db
	// nor wal/): there is nothing to recover or convert.
	ErrNoState = errors.New("no Raft state")
	// ErrConvertMismatch means the copy ConvertLogStore made does not read
	// back as the old store: nothing was changed (the copy is removed).
	ErrConvertMismatch = errors.New("the converted log store does not match the old one")
)

// storageErrors marks failures of the Raft log store with ErrStorage, so
// the callers of Apply can tell a full disk from a lost leadership (raft
// passes the store's error through to the futures).
type storageErrors struct{ raft.LogStore }

func (s storageErrors) StoreLog(l *raft.Log) error {
	if err := s.LogStore.StoreLog(l); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

// IsMonotonic passes raft.MonotonicLogStore through (raft-wal refuses a
// gap between indexes: after installing a snapshot raft must then empty
// the log instead of leaving one). Without it raft would not see that the
// store underneath is monotonic.
func (s storageErrors) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (s storageErrors) StoreLogs(ls []*raft.Log) error {
	if err := s.LogStore.StoreLogs(ls); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

// translate maps raft's errors onto this package's sentinels, keeping the
// original text.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrNotVoter),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %v", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", ErrShutdown, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}
