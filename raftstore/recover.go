package raftstore

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashicorp/raft"
	hlog "github.com/herald-io/herald/log"
)

// recoverAttempts bounds how often recovery retries a batch the event log
// fails to write (about 6 s of back-off in all).
const recoverAttempts = 6

// Recover rewrites a stopped node's Raft state so that its configuration is
// exactly servers: the way back from a lost quorum (the survivors are told
// who is left, then started). Every entry in the node's Raft log is
// applied to the event log first, then a snapshot records the new
// configuration (metadata only, like every snapshot: the event log stays
// where it is). Run it on every survivor, with the same servers, while
// no node is running. Entries the lost nodes committed but this node
// never received are gone: recover the most up-to-date survivors. A node
// whose event log is behind its newest snapshot (events.db lost) is
// refused with ErrEventLogLost before anything is changed.
func Recover(dir string, db *hlog.DB, logger *slog.Logger, servers []Server) error {
	if len(servers) == 0 {
		return errors.New("raftstore: recover: no servers given")
	}
	if logger == nil {
		logger = slog.Default()
	}
	var conf raft.Configuration
	for _, s := range servers {
		if s.ID == "" || s.Addr == "" {
			return fmt.Errorf("raftstore: recover: server %+v needs an id and an address", s)
		}
		suffrage := raft.Voter
		if s.Suffrage == "nonvoter" {
			suffrage = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Addr), Suffrage: suffrage})
	}
	if !HasState(dir) {
		return fmt.Errorf("raftstore: recover: %w: %s holds neither %s nor %s", ErrNoState, dir, boltFile, walDir+"/")
	}
	kind, _, err := chooseLogStore(dir, "")
	if err != nil {
		return fmt.Errorf("raftstore: recover: %w", err)
	}
	f, err := newFSM(db, logger)
	if err != nil {
		return err
	}
	// A disk that fails now fails the recovery within seconds (and
	// changes nothing: RecoverCluster takes no snapshot and deletes no
	// log entry when the FSM cannot snapshot) instead of retrying
	// forever where nobody can stop it.
	f.giveUpAfter = recoverAttempts
	hcl := newHCLogger(logger, "raft")
	logs, err := openLogStore(storePath(dir, kind), kind, 0, hcl)
	if err != nil {
		return fmt.Errorf("raftstore: recover: %w", err)
	}
	defer logs.Close()
	snaps, err := newSnapshotStore(dir, db, logger, true)
	if err != nil {
		return err
	}
	applied, _ := f.appliedIndex()
	if _, err := snaps.behind(applied); err != nil {
		return fmt.Errorf("raftstore: recover: %w", err)
	}
	_, trans := raft.NewInmemTransport("")
	rc := raft.DefaultConfig()
	rc.LocalID = conf.Servers[0].ID // only used for validation here
	rc.Logger = hcl
	if err := raft.RecoverCluster(rc, f, logs, logs, snaps, trans, conf); err != nil {
		return fmt.Errorf("raftstore: recover: %w", err)
	}
	if err := f.failure(); err != nil {
		return fmt.Errorf("raftstore: recover: the event log could not be written (nothing was changed; fix the disk and run recover again): %w", err)
	}
	logger.Warn("cluster configuration rewritten", "servers", len(servers))
	return nil
}
