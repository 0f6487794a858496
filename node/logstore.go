package node

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// Raft log stores (Config.RaftLogStore).
const (
	RaftLogStoreWAL  = raftstore.LogStoreWAL
	RaftLogStoreBolt = raftstore.LogStoreBolt
)

// ErrRaftLogStore means the Raft log store asked for (--raft-log-store)
// does not match the data dir, or the data dir holds both stores: the
// node did not start (raftstore.ErrLogStore).
var ErrRaftLogStore = raftstore.ErrLogStore

// logStoreError names the flag in a log store refusal.
func logStoreError(want string, err error) error {
	if want == "" {
		return fmt.Errorf("node: --raft-log-store not given: %w", err)
	}
	return fmt.Errorf("node: --raft-log-store %s: %w", want, err)
}

// HasRaftState reports whether dataDir holds a Raft log store (raft.db
// or wal/).
func HasRaftState(dataDir string) bool { return raftstore.HasState(dataDir) }

// ConvertLogStore converts the Raft log store of the stopped node in
// dataDir to the store to (RaftLogStoreWAL or RaftLogStoreBolt), keeping
// the old one renamed as a backup; see raftstore.ConvertLogStore. It
// holds the data dir's lock (the event log's) meanwhile, so it fails at
// once on a running node's dir (hlog.ErrLocked).
func ConvertLogStore(dataDir, to string, logger *slog.Logger) (raftstore.ConvertResult, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if !raftstore.HasState(dataDir) {
		return raftstore.ConvertResult{}, fmt.Errorf("node: convert-log-store: %w: %s holds neither raft.db nor wal/", raftstore.ErrNoState, dataDir)
	}
	db, err := hlog.Open(filepath.Join(dataDir, "events.db"), hlog.Options{Logger: logger.With("subsystem", "log")})
	if err != nil {
		return raftstore.ConvertResult{}, fmt.Errorf("node: convert-log-store (is the node still running?): %w", err)
	}
	res, err := raftstore.ConvertLogStore(dataDir, to, logger.With("subsystem", "raft"))
	if err != nil {
		err = fmt.Errorf("node: convert-log-store: %w", err)
	}
	return res, errors.Join(err, db.Close())
}
