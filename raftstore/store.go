package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/clusterport"
	hlog "github.com/herald-io/herald/log"
)

// Config configures a Store. Zero durations and sizes take the defaults
// documented on each field.
type Config struct {
	ID        string   // this node's Raft server id (required)
	Dir       string   // the Raft log store (raft.db or wal/) and snapshots/ live here (required)
	Bind      string   // Raft TCP listen address, e.g. 127.0.0.1:8081 (required)
	Advertise string   // address peers dial; default the bound address
	DB        *hlog.DB // the FSM's state (required; owned by the caller)
	Logger    *slog.Logger

	// Bootstrap forms a new cluster of one when the node has no Raft
	// state yet. It is ignored when state exists.
	Bootstrap bool

	// LogStore is Raft's log and stable store: LogStoreBolt (raft.db),
	// LogStoreWAL (wal/), or "" for the one Dir holds (LogStoreWAL in a
	// new dir). One that contradicts Dir is ErrLogStore (ChooseLogStore).
	LogStore string
	// WALSegmentSize is the size at which a WAL segment is sealed
	// (default DefaultWALSegmentSize).
	WALSegmentSize int

	HeartbeatTimeout   time.Duration // default 500ms
	ElectionTimeout    time.Duration // default 500ms
	LeaderLeaseTimeout time.Duration // default 250ms
	CommitTimeout      time.Duration // default 10ms
	MaxAppendEntries   int           // default 256
	SnapshotThreshold  uint64        // entries between snapshots, default 8192
	SnapshotInterval   time.Duration // how often to check, default 30s
	TrailingLogs       uint64        // entries kept after a snapshot, at most; default 10240
	ApplyTimeout       time.Duration // enqueue timeout for writes, default 5s

	// SnapshotBytes: a snapshot is also taken once the Raft log entries
	// applied since the last one hold more than this many bytes of data
	// (checked about once a second; default DefaultSnapshotBytes;
	// math.MaxUint64 turns it off). TrailingBytes bounds the entries
	// kept after a snapshot by bytes too: raft keeps
	// min(TrailingLogs, max(64, TrailingBytes / average entry size))
	// (default DefaultTrailingBytes; math.MaxUint64 keeps TrailingLogs).
	// See DESIGN.md, Snapshots.
	SnapshotBytes uint64
	TrailingBytes uint64

	// OnLeaderChange, if set, is called (from one goroutine, in order)
	// whenever this node's view of the leader changes.
	OnLeaderChange func(isLeader bool, leaderID, leaderAddr string)
	// Observe, if set, is told how long each FSM batch apply ("apply")
	// and each snapshot, taken and written ("snapshot"), took (metrics).
	Observe func(kind string, d time.Duration)

	// Cluster, with Dialer, runs Raft over the node's cluster port:
	// mutually authenticated TLS (package node always sets both; Bind is
	// then unused). Without them Raft uses plain TCP on Bind, which only
	// this package's own tests do.
	Cluster *clusterport.Listener
	Dialer  *clusterport.Dialer

	// transport replaces the TCP transport (tests: raft's in-memory
	// transport, which can be partitioned).
	transport raft.Transport
	// snapshotCheck is how often the bytes applied since the last
	// snapshot are checked (default 1s; tests use less).
	snapshotCheck time.Duration
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string
	Addr     string
	Suffrage string // "voter", "nonvoter", "staging"
}

// noPipelining turns raft's pipelined replication off: it can wedge a
// follower's replication and a node's shutdown (DESIGN.md, Transport).
const noPipelining = 1

// Store is Herald's Raft-replicated state machine: hashicorp/raft over
// TCP, raft-wal or raft-boltdb for Raft's log and stable store, file
// snapshots that carry the bbolt event log, and the FSM that applies
// commands to it.
type Store struct {
	cfg Config
	log *slog.Logger

	fsm      *fsm
	raft     *raft.Raft
	trans    raft.Transport
	logKind  string   // LogStoreBolt or LogStoreWAL
	logs     logStore // Raft's log and stable store
	observer *raft.Observer
	obsCh    chan raft.Observation
	done     chan struct{}
	wg       sync.WaitGroup

	peerMu      sync.Mutex
	unreachable map[string]bool // as leader: peers whose heartbeats fail

	readMu    sync.Mutex
	readyTerm uint64 // term in which this leader's barrier completed

	cache *logCache // in front of logs: the newest entries, bounded by bytes

	snapMu     sync.Mutex    // serialises the TrailingLogs updates (snapbytes.go)
	trailing   uint64        // the TrailingLogs raft was last given
	snapRetry  time.Time     // a failed bytes snapshot is not retried before
	snapPause  time.Duration // the wait after the last failure
	snapChecks atomic.Uint64 // checks done by snapshotByBytes (tests)

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and fills in defaults; Open starts the node.
func New(cfg Config) (*Store, error) {
	if cfg.ID == "" || cfg.Dir == "" || cfg.Bind == "" && cfg.Cluster == nil || cfg.DB == nil {
		return nil, errors.New("raftstore: ID, Dir, Bind (or Cluster) and DB are required")
	}
	if (cfg.Cluster == nil) != (cfg.Dialer == nil) {
		return nil, errors.New("raftstore: Cluster and Dialer go together")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatTimeout, 500*time.Millisecond)
	def(&cfg.ElectionTimeout, 500*time.Millisecond)
	def(&cfg.LeaderLeaseTimeout, 250*time.Millisecond)
	def(&cfg.CommitTimeout, 10*time.Millisecond)
	def(&cfg.SnapshotInterval, 30*time.Second)
	def(&cfg.ApplyTimeout, 5*time.Second)
	if cfg.MaxAppendEntries == 0 {
		cfg.MaxAppendEntries = 256
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 8192
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = 10240
	}
	if cfg.SnapshotBytes == 0 {
		cfg.SnapshotBytes = DefaultSnapshotBytes
	}
	if cfg.TrailingBytes == 0 {
		cfg.TrailingBytes = DefaultTrailingBytes
	}
	def(&cfg.snapshotCheck, time.Second)
	return &Store{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), trailing: cfg.TrailingLogs}, nil
}

// Open opens Raft's stores, checks the event log against the newest
// snapshot (restoreIfBehind), starts the transport and Raft, and
// bootstraps when asked and no state exists.
func (s *Store) Open() (err error) {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	defer func() {
		if err != nil {
			s.closeResources()
		}
	}()
	s.fsm, err = newFSM(s.cfg.DB, s.log)
	if err == nil {
		s.fsm.observe = s.cfg.Observe
	}
	if err != nil {
		return err
	}
	hcl := newHCLogger(s.log, "raft")
	kind, st, err := chooseLogStore(s.cfg.Dir, s.cfg.LogStore)
	if err != nil {
		return err
	}
	s.noteConversion(st, kind)
	if s.logs, err = openLogStore(storePath(s.cfg.Dir, kind), kind, s.cfg.WALSegmentSize, hcl); err != nil {
		return err
	}
	s.logKind = kind
	s.log.Info("raft log store", "store", kind, "path", storePath(s.cfg.Dir, kind))
	s.cache = newLogCache(s.logs, logCacheEntries, logCacheBytes)
	logs := storageErrors{s.cache}
	snaps, err := newSnapshotStore(s.cfg.Dir, s.cfg.DB, s.log, false)
	if err != nil {
		return err
	}
	if err := s.restoreIfBehind(snaps); err != nil {
		return err
	}

	var adv net.Addr
	if s.cfg.Advertise != "" {
		adv, err = net.ResolveTCPAddr("tcp", s.cfg.Advertise)
		if err != nil {
			return fmt.Errorf("raftstore: advertise address: %w", err)
		}
	}
	if s.cfg.transport != nil {
		s.trans = s.cfg.transport
	} else {
		var stream raft.StreamLayer
		if s.cfg.Cluster != nil {
			if stream, err = newClusterStream(s.cfg.Cluster, s.cfg.Dialer, adv); err != nil {
				return err
			}
		} else if stream, err = newTCPStream(s.cfg.Bind, adv); err != nil {
			return fmt.Errorf("raftstore: transport on %s: %w", s.cfg.Bind, err)
		}
		s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 5, Timeout: 10 * time.Second, Logger: hcl, MaxRPCsInFlight: noPipelining,
		})
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.ID)
	rc.Logger = hcl
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = s.cfg.CommitTimeout
	rc.MaxAppendEntries = s.cfg.MaxAppendEntries
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.BatchApplyCh = true
	// The event log is durable and knows its applied index; restoring the
	// snapshot on every start would throw that away (restoreIfBehind
	// covers the case where the log is behind).
	rc.NoSnapshotRestoreOnStart = true

	hasState, err := raft.HasExistingState(logs, s.logs, snaps)
	if err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.logs, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("raftstore: start raft: %w", err)
	}
	if s.cfg.Bootstrap && !hasState {
		f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: s.trans.LocalAddr(), Suffrage: raft.Voter,
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("raftstore: bootstrap: %w", err)
		}
		s.log.Info("bootstrapped new cluster", "id", s.cfg.ID, "addr", s.trans.LocalAddr())
	}

	s.obsCh = make(chan raft.Observation, 256)
	s.observer = raft.NewObserver(s.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(s.observer)
	s.wg.Add(2)
	go s.observe()
	go s.snapshotByBytes()
	return nil
}

// restoreIfBehind checks the event log against the newest snapshot
// before raft starts. At or past it, the log is left alone. Behind a
// metadata-only snapshot (events.db lost, or replaced by an older copy)
// it is ErrEventLogLost: nothing here holds the state to rebuild it from.
// Behind a full snapshot (one received from a leader, or left by an
// earlier release) the log is restored from it.
func (s *Store) restoreIfBehind(snaps *snapshotStore) error {
	applied, _ := s.fsm.appliedIndex()
	id, err := snaps.behind(applied)
	if err != nil || id == "" {
		return err
	}
	s.log.Warn("event log is behind the newest snapshot; restoring it from the snapshot's full copy", "applied", applied, "snapshot", id)
	_, rc, err := snaps.Open(id)
	if err != nil {
		return fmt.Errorf("raftstore: open snapshot %s: %w", id, err)
	}
	return s.fsm.Restore(rc)
}

func (s *Store) observe() {
	defer s.wg.Done()
	lastLeader, lastIs := "", false
	for {
		select {
		case <-s.done:
			return
		case o := <-s.obsCh:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				s.setUnreachable(string(d.PeerID), true)
				continue
			case raft.ResumedHeartbeatObservation:
				s.setUnreachable(string(d.PeerID), false)
				continue
			}
		}
		addr, id := s.raft.LeaderWithID()
		is := s.raft.State() == raft.Leader
		if string(id) == lastLeader && is == lastIs {
			continue
		}
		lastLeader, lastIs = string(id), is
		s.peerMu.Lock()
		s.unreachable = nil // a new term starts with fresh heartbeats
		s.peerMu.Unlock()
		s.log.Info("leader changed", "leader", id, "leader_addr", addr, "is_leader", is)
		if s.cfg.OnLeaderChange != nil {
			s.cfg.OnLeaderChange(is, string(id), string(addr))
		}
	}
}

func (s *Store) setUnreachable(id string, down bool) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if s.unreachable == nil {
		s.unreachable = map[string]bool{}
	}
	if down {
		s.unreachable[id] = true
	} else {
		delete(s.unreachable, id)
	}
}

// Unreachable reports whether this leader's heartbeats to peer id are
// failing (false on a follower, which does not heartbeat).
func (s *Store) Unreachable(id string) bool {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.unreachable[id]
}

// Close shuts Raft down without transferring leadership and closes Raft's
// stores. The event log stays open (its owner closes it).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.fsm != nil {
			s.fsm.close()
		}
		if s.raft != nil {
			s.raft.DeregisterObserver(s.observer)
			if err := s.raft.Shutdown().Error(); err != nil {
				s.closeErr = err
			}
		}
		s.wg.Wait()
		s.closeResources()
	})
	return s.closeErr
}

func (s *Store) closeResources() {
	if s.raft != nil && s.observer == nil {
		// Open failed after raft started.
		s.raft.Shutdown().Error()
	}
	if c, ok := s.trans.(io.Closer); ok {
		c.Close()
	}
	if s.logs != nil {
		s.logs.Close()
	}
}

// Addr returns the Raft address peers dial.
func (s *Store) Addr() string { return string(s.trans.LocalAddr()) }

// LogStore is the log store this node runs on: LogStoreBolt or
// LogStoreWAL.
func (s *Store) LogStore() string { return s.logKind }

// LogStoreSize is the disk use of Raft's log store and what it is called
// in the data dir ("raft.db" or "wal").
func (s *Store) LogStoreSize() (name string, bytes int64, err error) {
	name = boltFile
	if s.logKind == LogStoreWAL {
		name = walDir
	}
	bytes, err = logStoreSize(s.cfg.Dir, s.logKind)
	return name, bytes, err
}

// ID returns this node's server id.
func (s *Store) ID() string { return s.cfg.ID }

// IsLeader reports whether this node is the leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// State returns "leader", "follower", "candidate" or "shutdown".
func (s *Store) State() string { return strings.ToLower(s.raft.State().String()) }

// Leader returns the current leader's id and Raft address, empty if none.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// CommitIndex is the highest index this node knows to be committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// AppliedIndex is the highest index raft has applied (including entries
// that never reach the FSM, such as no-ops and barriers).
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// LastContact is when this follower last heard from the leader.
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }

// Future is a pending write.
type Future struct {
	f   raft.ApplyFuture
	err error
}

// ApplyAppend submits append requests as one Raft entry. It returns at
// once; Wait blocks until the entry is applied on this node.
func (s *Store) ApplyAppend(reqs []AppendRequest) *Future {
	if s.raft.State() != raft.Leader {
		return &Future{err: ErrNotLeader}
	}
	return &Future{f: s.raft.Apply(EncodeAppend(reqs), s.cfg.ApplyTimeout)}
}

// Wait returns one AppendResult per request, in order.
func (f *Future) Wait() ([]AppendResult, error) {
	if f.err != nil {
		return nil, f.err
	}
	if err := f.f.Error(); err != nil {
		return nil, translate(err)
	}
	if err, isErr := f.f.Response().(error); isErr {
		return nil, err // the entry broke a rule bbolt enforces (fsm.go, refused)
	}
	res, ok := f.f.Response().([]AppendResult)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected response %T", ErrBadCommand, f.f.Response())
	}
	return res, nil
}

func (s *Store) applyWait(cmd []byte) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := s.raft.Apply(cmd, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return translate(err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// SetNode records a node's HTTP address in the replicated state.
func (s *Store) SetNode(n hlog.NodeMeta) error { return s.applyWait(encodeSetNode(n)) }

// AddVoter adds (or, for a known id with a new address, updates) a voting
// member. Adding a member already present with the same address is a
// no-op.
func (s *Store) AddVoter(id, addr string, timeout time.Duration) error {
	return s.addServer(id, addr, true, timeout)
}

// AddNonvoter adds (or updates) a member that receives the log but does
// not vote: a read replica, or a node catching up before it is promoted
// with AddVoter.
func (s *Store) AddNonvoter(id, addr string, timeout time.Duration) error {
	return s.addServer(id, addr, false, timeout)
}

func (s *Store) addServer(id, addr string, voter bool, timeout time.Duration) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	want := "nonvoter"
	if voter {
		want = "voter"
	}
	for _, sv := range servers {
		if sv.ID == id && sv.Addr == addr && sv.Suffrage == want {
			return nil
		}
		if sv.ID == id && !voter && sv.Suffrage == "voter" {
			// Raft cannot demote through AddNonvoter's path cleanly for
			// the leader itself; DemoteVoter keeps the member.
			if id == s.cfg.ID {
				return fmt.Errorf("%w: the leader cannot make itself a non-voter", ErrNotLeader)
			}
			return translate(s.raft.DemoteVoter(raft.ServerID(id), 0, timeout).Error())
		}
		if sv.Addr == addr && sv.ID != id {
			// The address now belongs to another id: drop the old one.
			if err := translate(s.raft.RemoveServer(raft.ServerID(sv.ID), 0, timeout).Error()); err != nil {
				return err
			}
		}
	}
	if !voter {
		return translate(s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error())
	}
	return translate(s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error())
}

// RemoveServer removes a member and forgets its metadata.
func (s *Store) RemoveServer(id string, timeout time.Duration) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	found := false
	for _, sv := range servers {
		found = found || sv.ID == id
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := translate(s.raft.RemoveServer(raft.ServerID(id), 0, timeout).Error()); err != nil {
		return err
	}
	return s.applyWait(encodeDeleteNode(id))
}

// TransferLeadership hands leadership to the voter with id to, or to the
// most up-to-date voter when to is empty, and waits for the transfer.
func (s *Store) TransferLeadership(to string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if to == "" {
		return translate(s.raft.LeadershipTransfer().Error())
	}
	if to == s.cfg.ID {
		return nil // already leads
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	for _, sv := range servers {
		if sv.ID == to {
			if sv.Suffrage != "voter" {
				return fmt.Errorf("%w: %s is not a voter", ErrNotFound, to)
			}
			return translate(s.raft.LeadershipTransferToServer(raft.ServerID(sv.ID), raft.ServerAddress(sv.Addr)).Error())
		}
	}
	return fmt.Errorf("%w: %s", ErrNotFound, to)
}

// Voters counts the voting members of the latest configuration.
func (s *Store) Voters() int {
	servers, err := s.Servers()
	if err != nil {
		return 0
	}
	n := 0
	for _, sv := range servers {
		if sv.Suffrage == "voter" {
			n++
		}
	}
	return n
}

// Servers returns the latest Raft configuration.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, translate(err)
	}
	var out []Server
	for _, sv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(sv.ID), Addr: string(sv.Address), Suffrage: strings.ToLower(sv.Suffrage.String())})
	}
	return out, nil
}

// Barrier waits until every entry before it is applied on this leader.
func (s *Store) Barrier(timeout time.Duration) error {
	return translate(s.raft.Barrier(timeout).Error())
}

// WaitApplied blocks until raft has applied index idx. No-op and barrier
// entries advance raft's applied index without reaching the FSM, so it
// wakes on every FSM batch and also re-checks every millisecond.
func (s *Store) WaitApplied(ctx context.Context, idx uint64) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		_, ch := s.fsm.appliedIndex()
		applied := s.raft.AppliedIndex()
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for index %d (applied %d): %v", ErrTimeout, idx, applied, ctx.Err())
		case <-s.done:
			return ErrShutdown
		}
	}
}

// ReadIndex makes a following local read linearizable: it records the
// commit index, confirms leadership with a quorum (VerifyLeader) and waits
// until the log has applied that index. A leader new in its term first
// commits a barrier, so its commit index covers every earlier term.
func (s *Store) ReadIndex(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	term := s.raft.CurrentTerm()
	s.readMu.Lock()
	ready := s.readyTerm == term
	s.readMu.Unlock()
	if !ready {
		if err := s.Barrier(s.cfg.ApplyTimeout); err != nil {
			return err
		}
		s.readMu.Lock()
		s.readyTerm = term
		s.readMu.Unlock()
	}
	idx := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return translate(err)
	}
	return s.WaitApplied(ctx, idx)
}

// Snapshot asks Raft to take a snapshot now (and truncate its log to the
// trailing entries TrailingLogs and TrailingBytes allow).
func (s *Store) Snapshot() error {
	s.setTrailing(true)
	err := s.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return translate(err)
}

// StorageError is the event-log write failure the node is retrying (disk
// full, read-only, I/O error), nil when writes work.
func (s *Store) StorageError() error { return s.fsm.storageError() }

// Stats returns raft's counters (for /v1/cluster and debugging).
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// Term is the current Raft term.
func (s *Store) Term() uint64 { return s.raft.CurrentTerm() }
