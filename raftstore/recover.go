package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	hlog "github.com/herald-io/herald/log"
	bolt "go.etcd.io/bbolt"
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
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
		return fmt.Errorf("raftstore: recover: %s holds no Raft state: %w", dir, err)
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
	logs, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return fmt.Errorf("raftstore: recover: open raft.db (is the node still running?): %w", err)
	}
	defer logs.Close()
	hcl := newHCLogger(logger, "raft")
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
