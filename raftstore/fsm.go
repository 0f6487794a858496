package raftstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
	berrors "go.etcd.io/bbolt/errors"
)

// fsm is the thin adapter between raft and the command processor: it opens
// one log transaction per batch of entries, skips entries the log already
// holds (the log is durable; appends are not idempotent), applies the rest
// and records the last index in the same transaction.
type fsm struct {
	db  *hlog.DB
	log *slog.Logger

	mu      sync.Mutex
	applied uint64        // last index applied (or skipped as already applied)
	waitCh  chan struct{} // closed and replaced after every batch
	storage error         // the last storage failure while it lasts

	stop     chan struct{} // closed when the store closes
	stopOnce sync.Once

	// giveUpAfter, when not zero, bounds the attempts at a batch that
	// meets a storage failure (herald recover, which nobody can stop
	// otherwise); failed then holds the failure: every later batch
	// fails, and so does a snapshot, so that no state that skipped an
	// entry is ever recorded as complete.
	giveUpAfter int
	failed      error

	observe func(kind string, d time.Duration) // metrics; nil: none

	// The data bytes and the number of the entries applied since the
	// last snapshot, and the average entry size of the window the last
	// snapshot closed: they decide when to snapshot and how many entries
	// to keep (snapbytes.go), never what is applied, so they live outside
	// the replicated state.
	sinceBytes, sinceEntries atomic.Uint64
	prevAvg                  atomic.Uint64
}

func newFSM(db *hlog.DB, logger *slog.Logger) (*fsm, error) {
	idx, _, err := db.Applied()
	if err != nil {
		return nil, err
	}
	return &fsm{db: db, log: logger, applied: idx, waitCh: make(chan struct{}), stop: make(chan struct{})}, nil
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies a single entry; raft calls ApplyBatch instead, since fsm
// implements BatchingFSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one bbolt transaction.
//
// A storage failure (disk full, read-only, I/O error) rolls the
// transaction back and is retried, with back-off, until it succeeds: the
// node stops applying (and so acknowledging) meanwhile, and continues in
// order once the disk works again. An undecodable command or a corrupt
// record is a bug or damage that retrying cannot fix: the node stops, so
// that no replica ever skips an entry the others applied.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	if f.observe != nil {
		start := time.Now()
		defer func() { f.observe("apply", time.Since(start)) }()
	}
	f.count(logs)
	backoff := 50 * time.Millisecond
	var refused map[uint64]error // entries that broke a rule bbolt enforces
	if err := f.failure(); err != nil {
		return failAll(len(logs), err)
	}
	for attempt := 1; ; attempt++ {
		out, err := f.applyOnce(logs, refused)
		var r *refusedError
		if errors.As(err, &r) {
			// Deterministic: every replica meets the same refusal for the
			// same entry. The transaction is rolled back (the entry may
			// have written part of itself) and the batch applied again
			// without it; its result is the error.
			if refused == nil {
				refused = map[uint64]error{}
			}
			refused[r.index] = r.err
			f.log.Warn("entry refused by the event log's limits; it has no effect", "index", r.index, "error", r.err)
			attempt--
			continue
		}
		if err == nil {
			f.setStorageError(nil)
			f.advance(logs[len(logs)-1].Index)
			return out
		}
		if errors.Is(err, ErrBadCommand) || errors.Is(err, hlog.ErrCorrupt) {
			f.log.Error("FSM apply failed; stopping to keep replicas identical", "error", err)
			panic(fmt.Sprintf("raftstore: FSM apply failed: %v", err))
		}
		f.setStorageError(err)
		if f.giveUpAfter > 0 && attempt >= f.giveUpAfter {
			f.log.Error("writing the event log failed; giving up", "error", err, "attempts", attempt)
			f.mu.Lock()
			f.failed = err
			f.mu.Unlock()
			return failAll(len(logs), err)
		}
		f.log.Error("writing the event log failed; retrying (nothing is acknowledged meanwhile)", "error", err, "attempt", attempt)
		select {
		case <-f.stop:
			// Not applied: the durable applied index did not move, so a
			// restart replays these entries.
			for i := range out {
				out[i] = fmt.Errorf("%w: %v", ErrShutdown, err)
			}
			return out
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// count adds the entries to those since the last snapshot. Entries the
// event log holds already (a replay after a restart) count too: they are
// in the Raft log all the same.
func (f *fsm) count(logs []*raft.Log) {
	var n uint64
	for _, l := range logs {
		n += uint64(len(l.Data))
	}
	f.sinceBytes.Add(n)
	f.sinceEntries.Add(uint64(len(logs)))
}

// sinceSnapshot returns the data bytes and entries applied since the
// last snapshot.
func (f *fsm) sinceSnapshot() (bytes, entries uint64) {
	return f.sinceBytes.Load(), f.sinceEntries.Load()
}

// snapshotTaken subtracts what a snapshot covered (what was counted when
// FSM.Snapshot ran; entries applied while it was written stay counted)
// and records the window's average entry size.
func (f *fsm) snapshotTaken(bytes, entries uint64) {
	subFloor(&f.sinceBytes, bytes)
	subFloor(&f.sinceEntries, entries)
	if entries > 0 {
		f.prevAvg.Store(bytes / entries)
	}
}

// avgEntrySize estimates the size of the entries raft keeps after a
// snapshot: the average over the entries since the last snapshot, or
// over the window before it while the current one holds fewer than
// minAvgEntries; 0 when nothing is known yet.
func (f *fsm) avgEntrySize() uint64 {
	b, e := f.sinceSnapshot()
	prev := f.prevAvg.Load()
	if e > 0 && (e >= minAvgEntries || prev == 0) {
		return max(b/e, 1)
	}
	return prev
}

// subFloor subtracts n from a, stopping at zero (a Restore may have reset
// it meanwhile).
func subFloor(a *atomic.Uint64, n uint64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, old-min(old, n)) {
			return
		}
	}
}

func (f *fsm) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func failAll(n int, err error) []interface{} {
	out := make([]interface{}, n)
	for i := range out {
		out[i] = fmt.Errorf("%w: %v", ErrShutdown, err)
	}
	return out
}

// refusedError is an entry the event log refused for a reason every
// replica meets alike (bbolt's key and value limits).
type refusedError struct {
	index uint64
	err   error
}

func (e *refusedError) Error() string { return fmt.Sprintf("entry %d refused: %v", e.index, e.err) }

// refusal reports whether err is bbolt refusing the data itself, which a
// retry cannot change and which every replica meets alike.
func refusal(err error) bool {
	for _, e := range []error{berrors.ErrKeyTooLarge, berrors.ErrValueTooLarge, berrors.ErrKeyRequired,
		berrors.ErrBucketNameRequired, berrors.ErrIncompatibleValue} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (f *fsm) applyOnce(logs []*raft.Log, refused map[uint64]error) ([]interface{}, error) {
	out := make([]interface{}, len(logs))
	var last *raft.Log
	err := f.db.Update(func(tx *hlog.Tx) error {
		applied, _ := tx.Applied()
		for i, l := range logs {
			if l.Index <= applied {
				continue // already in the durable log: a replay after restart
			}
			last = l
			if l.Type != raft.LogCommand {
				continue
			}
			if err, ok := refused[l.Index]; ok {
				out[i] = fmt.Errorf("%w: %v", ErrRefused, err)
				continue
			}
			res, err := applyCommand(tx, l.Data)
			if err != nil {
				if refusal(err) {
					return &refusedError{index: l.Index, err: err}
				}
				return fmt.Errorf("entry %d: %w", l.Index, err)
			}
			out[i] = res
		}
		if last == nil {
			return nil
		}
		return tx.SetApplied(last.Index, last.Term)
	})
	return out, err
}

func (f *fsm) setStorageError(err error) {
	f.mu.Lock()
	f.storage = err
	f.mu.Unlock()
}

// storageError returns the storage failure the FSM is retrying, if any.
func (f *fsm) storageError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.storage
}

func (f *fsm) close() { f.stopOnce.Do(func() { close(f.stop) }) }

func (f *fsm) advance(idx uint64) {
	f.mu.Lock()
	if idx > f.applied {
		f.applied = idx
	}
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.mu.Unlock()
}

// appliedIndex returns the last applied index and a channel closed at the
// next advance.
func (f *fsm) appliedIndex() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.waitCh
}

// applyCommand is the command processor. It returns a fatal error only for
// storage failures or undecodable commands; a client-level problem is part
// of the result.
func applyCommand(tx *hlog.Tx, data []byte) (interface{}, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(data))
	}
	if data[0] != cmdVersion1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadCommand, data[0])
	}
	r := wire.NewReader(data[2:])
	switch cmdType(data[1]) {
	case cmdAppend:
		reqs, err := decodeAppend(r)
		if err != nil {
			return nil, err
		}
		results := make([]AppendResult, len(reqs))
		for i, req := range reqs {
			evs, err := tx.Append(req.Store, req.Events)
			if err != nil {
				if errors.Is(err, hlog.ErrInvalidStore) || errors.Is(err, hlog.ErrInvalidEvent) {
					results[i].Err = err
					continue
				}
				return nil, err
			}
			results[i].Events = evs
		}
		return results, nil
	case cmdSetNode:
		n := hlog.NodeMeta{ID: r.String(), RaftAddr: r.String(), HTTPAddr: r.String()}
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: set node: %v", ErrBadCommand, r.Err())
		}
		if err := tx.SetNode(n); err != nil {
			if clientError(err) {
				return err, nil // a result every replica agrees on, never a retry
			}
			return nil, err
		}
		return nil, nil
	case cmdDeleteNode:
		id := r.String()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: delete node: %v", ErrBadCommand, r.Err())
		}
		return nil, tx.DeleteNode(id)
	}
	if t := cmdType(data[1]); t >= cmdCreateKey && t <= cmdUseToken {
		return applyKeyCommand(tx, t, r)
	}
	if t := cmdType(data[1]); t == cmdPutDataKey || t == cmdReseal {
		return applySecretsCommand(tx, t, r)
	}
	return applySubCommand(tx, cmdType(data[1]), r)
}

// Snapshot captures what a snapshot's metadata needs: the event log's
// applied index and term, read on the FSM goroutine (so exactly the state
// at raft's snapshot index, give or take no-op entries). No transaction is
// held: the log itself stays in events.db, durable at that index or later,
// and is streamed only when a follower needs it (snapshotStore.Open).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.failure(); err != nil {
		return nil, fmt.Errorf("raftstore: no snapshot after a storage failure: %w", err)
	}
	idx, term, err := f.db.Applied()
	if err != nil {
		return nil, err
	}
	b, e := f.sinceSnapshot()
	return &fsmSnapshot{index: idx, term: term, log: f.log, observe: f.observe, start: time.Now(),
		taken: func() { f.snapshotTaken(b, e) }}, nil
}

// Restore installs a snapshot's state. A bbolt file (a leader's stream, a
// full snapshot) replaces the whole log, atomically; entries at or below
// its applied index are then skipped, however far past the snapshot's
// index it is. The metadata header (snapshotStore.Open on a local store:
// herald recover) keeps the live log, which must be at the header's index
// or later.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	if head, _ := br.Peek(metaHeaderLen); len(head) == metaHeaderLen {
		if need, _, ok := decodeMetaHeader(head); ok {
			idx, _, err := f.db.Applied()
			if err != nil {
				return err
			}
			if idx < need {
				return fmt.Errorf("raftstore: restore: %w: events.db is at index %d, the snapshot needs %d", ErrEventLogLost, idx, need)
			}
			f.reset(idx)
			f.log.Info("snapshot names the live event log; kept it", "applied_index", idx, "snapshot_state_index", need)
			return nil
		}
	}
	if err := f.db.Replace(br); err != nil {
		return err
	}
	idx, _, err := f.db.Applied()
	if err != nil {
		return err
	}
	// raft drops or compacts the log it had before an installed snapshot.
	f.sinceBytes.Store(0)
	f.sinceEntries.Store(0)
	f.reset(idx)
	f.log.Info("restored from snapshot", "applied_index", idx)
	return nil
}

// reset sets the applied index after a restore and wakes its waiters.
func (f *fsm) reset(idx uint64) {
	f.mu.Lock()
	f.applied = idx
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.mu.Unlock()
}

type fsmSnapshot struct {
	index, term uint64 // the event log's applied index and term
	log         *slog.Logger
	observe     func(kind string, d time.Duration)
	start       time.Time
	taken       func() // the snapshot is written: FSM's counters move on
}

// Persist writes the metadata header only (snapshotStore's sink keeps it
// in meta.json, fsynced): its cost does not grow with the log.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(encodeMetaHeader(s.index, s.term)); err != nil {
		sink.Cancel()
		return fmt.Errorf("snapshot persist: %w", err)
	}
	err := sink.Close()
	if err == nil {
		if s.taken != nil {
			s.taken()
		}
		s.log.Debug("snapshot persisted", "state_index", s.index)
		if s.observe != nil {
			s.observe("snapshot", time.Since(s.start))
		}
	}
	return err
}

// Release does nothing: the snapshot holds no resources.
func (s *fsmSnapshot) Release() {}
