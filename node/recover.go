package node

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// Peer is one member of a recovered configuration.
type Peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	NonVoter bool   `json:"non_voter,omitempty"`
}

// Recover rewrites the Raft configuration of the stopped node whose data
// is in dataDir to exactly peers, after applying its whole Raft log to its
// event log: the way back from a lost quorum. Run it on each survivor with
// the same peers, then start them. See raftstore.Recover.
func Recover(dataDir string, peers []Peer, logger *slog.Logger) error {
	if len(peers) == 0 {
		return errors.New("node: recover: no peers")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if !raftstore.HasState(dataDir) {
		return fmt.Errorf("node: recover: %w: %s holds neither raft.db nor wal/", raftstore.ErrNoState, dataDir)
	}
	db, err := hlog.Open(filepath.Join(dataDir, "events.db"), hlog.Options{Logger: logger.With("subsystem", "log")})
	if err != nil {
		return fmt.Errorf("node: recover (is the node still running?): %w", err)
	}
	servers := make([]raftstore.Server, len(peers))
	for i, p := range peers {
		servers[i] = raftstore.Server{ID: p.ID, Addr: p.RaftAddr, Suffrage: "voter"}
		if p.NonVoter {
			servers[i].Suffrage = "nonvoter"
		}
	}
	err = raftstore.Recover(dataDir, db, logger.With("subsystem", "raft"), servers)
	return errors.Join(err, db.Close())
}
