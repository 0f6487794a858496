package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// reopenEvery bounds how often a walStore that could not be opened again
// (the disk still full) tries once more.
const reopenEvery = 500 * time.Millisecond

// walStore is hashicorp/raft-wal (v0.4.2) with the one repair it lacks.
//
// When an append fills the tail segment, raft-wal writes the segment's
// index, fsyncs, and only then, in the background, records the seal and
// the next segment in its metadata and creates that segment's file. If
// the process dies between the two, or the metadata commit or the file
// creation fails (a full disk: segments are preallocated), the tail is
// sealed on disk but not in the metadata, or its successor has no file:
// raft-wal refuses every later append with ErrSealed, and after a restart
// still does in the first case (it recovers the tail as sealed and never
// rotates it). Herald's node would then never append again.
//
// walStore repairs the first case when it opens the WAL (it records the
// seal and the next segment as the rotation would have; raft-wal creates
// a next segment whose file is missing when it opens), and when an append
// meets ErrSealed it closes the WAL, repairs and opens it again, and
// retries the append once. While it cannot open (a disk still full) every
// call fails and it tries again, at most every reopenEvery.
// TestWALRepairsSealedTail builds both states.
type walStore struct {
	dir         string
	segmentSize int
	log         hclog.Logger

	mu        sync.RWMutex
	w         *raftwal.WAL // nil while closed after a failed reopen
	closed    bool
	lastTry   time.Time
	lastErr   error
	reopenMu  sync.Mutex // one reopen at a time
	reopenCnt int        // reopens done (tests)
}

var _ logStore = (*walStore)(nil)

func openWALStore(dir string, segmentSize int, logger hclog.Logger) (*walStore, error) {
	s := &walStore{dir: dir, segmentSize: segmentSize, log: logger}
	w, err := s.open()
	if err != nil {
		return nil, err
	}
	s.w = w
	return s, nil
}

// open repairs a sealed tail, then opens the WAL.
func (s *walStore) open() (*raftwal.WAL, error) {
	if err := repairSealedTail(s.dir, s.segmentSize, s.log); err != nil {
		return nil, fmt.Errorf("raftstore: repair %s: %w", s.dir, err)
	}
	w, err := raftwal.Open(s.dir, raftwal.WithSegmentSize(s.segmentSize), raftwal.WithLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", s.dir, err)
	}
	return w, nil
}

// reopen closes the WAL the caller saw (old, nil if none), repairs it and
// opens it again, unless another call did so meanwhile.
func (s *walStore) reopen(old *raftwal.WAL, why error) error {
	s.reopenMu.Lock()
	defer s.reopenMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return raftwal.ErrClosed
	}
	if s.w != old {
		return nil // reopened by another call
	}
	if s.w == nil && time.Since(s.lastTry) < reopenEvery {
		return s.lastErr
	}
	if s.w != nil {
		s.log.Warn("the WAL refuses appends; closing it to repair and open it again", "error", why)
		if err := s.w.Close(); err != nil {
			s.log.Warn("close the WAL", "error", err)
		}
		s.w = nil
	}
	s.lastTry = time.Now()
	w, err := s.open()
	if err != nil {
		s.lastErr = fmt.Errorf("%w (the WAL is closed until it opens again)", err)
		s.log.Error("the WAL could not be opened again; retrying on the next call", "error", err)
		return s.lastErr
	}
	s.w, s.lastErr = w, nil
	s.reopenCnt++
	s.log.Warn("the WAL was repaired and opened again")
	return nil
}

// call runs fn on the open WAL; a write that meets ErrSealed (or a WAL
// closed by a failed reopen) reopens it and runs fn once more.
func (s *walStore) call(write bool, fn func(*raftwal.WAL) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return raftwal.ErrClosed
	}
	w := s.w
	var err error
	if w != nil {
		err = fn(w)
	}
	s.mu.RUnlock()
	if w != nil && (!write || !errors.Is(err, raftwal.ErrSealed)) {
		return err
	}
	if rerr := s.reopen(w, err); rerr != nil {
		return rerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.w == nil {
		return raftwal.ErrClosed
	}
	return fn(s.w)
}

func (s *walStore) FirstIndex() (i uint64, err error) {
	err = s.call(false, func(w *raftwal.WAL) (e error) { i, e = w.FirstIndex(); return })
	return i, err
}

func (s *walStore) LastIndex() (i uint64, err error) {
	err = s.call(false, func(w *raftwal.WAL) (e error) { i, e = w.LastIndex(); return })
	return i, err
}

func (s *walStore) GetLog(index uint64, l *raft.Log) error {
	return s.call(false, func(w *raftwal.WAL) error { return w.GetLog(index, l) })
}

func (s *walStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *walStore) StoreLogs(ls []*raft.Log) error {
	return s.call(true, func(w *raftwal.WAL) error { return w.StoreLogs(ls) })
}

func (s *walStore) DeleteRange(min, max uint64) error {
	return s.call(true, func(w *raftwal.WAL) error { return w.DeleteRange(min, max) })
}

func (s *walStore) Set(k, v []byte) error {
	return s.call(true, func(w *raftwal.WAL) error { return w.Set(k, v) })
}

func (s *walStore) Get(k []byte) (v []byte, err error) {
	err = s.call(false, func(w *raftwal.WAL) (e error) { v, e = w.Get(k); return })
	return v, err
}

func (s *walStore) SetUint64(k []byte, v uint64) error {
	return s.call(true, func(w *raftwal.WAL) error { return w.SetUint64(k, v) })
}

func (s *walStore) GetUint64(k []byte) (v uint64, err error) {
	err = s.call(false, func(w *raftwal.WAL) (e error) { v, e = w.GetUint64(k); return })
	return v, err
}

// IsMonotonic: raft-wal refuses gaps between indexes (raft then empties
// the log after installing a snapshot instead of leaving one).
func (s *walStore) IsMonotonic() bool { return true }

func (s *walStore) Close() error {
	s.reopenMu.Lock()
	defer s.reopenMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.w == nil {
		return nil
	}
	return s.w.Close()
}

// repairSealedTail records in the WAL's metadata at dir a tail segment
// that is sealed on disk but not there (see walStore), with the next
// segment after it, exactly as raft-wal's rotation commits them; the
// next segment's file is created when the WAL opens. A dir without a WAL,
// or whose tail is not sealed, is left alone. The WAL must not be open.
func repairSealedTail(dir string, segmentSize int, logger hclog.Logger) error {
	if !exists(filepath.Join(dir, metadb.FileName)) {
		return nil
	}
	meta := &metadb.BoltMetaDB{}
	ps, err := meta.Load(dir)
	if err != nil {
		return err
	}
	defer meta.Close()
	if len(ps.Segments) == 0 {
		return nil
	}
	tail := ps.Segments[len(ps.Segments)-1]
	if !tail.SealTime.IsZero() {
		return nil
	}
	sw, err := segment.NewFiler(dir, walfs.New()).RecoverTail(tail)
	if errors.Is(err, os.ErrNotExist) {
		return nil // raft-wal creates it
	}
	if err != nil {
		return err
	}
	sealed, indexStart, err := sw.Sealed()
	last := sw.LastIndex()
	if cerr := sw.Close(); err == nil {
		err = cerr
	}
	if err != nil || !sealed {
		return err
	}
	now := time.Now()
	tail.SealTime, tail.IndexStart, tail.MaxIndex = now, indexStart, last
	ps.Segments[len(ps.Segments)-1] = tail
	if segmentSize == 0 {
		segmentSize = DefaultWALSegmentSize
	}
	ps.Segments = append(ps.Segments, types.SegmentInfo{
		ID: ps.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1,
		SizeLimit: uint32(segmentSize), Codec: raftwal.CodecBinaryV1, CreateTime: now,
	})
	ps.NextSegmentID++
	if err := meta.CommitState(ps); err != nil {
		return err
	}
	logger.Warn("repaired the WAL: its tail segment was sealed on disk but not in the metadata (a crash or a failed rotation); recorded the seal and a new segment",
		"segment", tail.ID, "base_index", tail.BaseIndex, "last_index", last)
	return nil
}
