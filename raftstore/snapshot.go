package raftstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/fsutil"
	hlog "github.com/herald-io/herald/log"
)

// Snapshot errors.
var (
	// ErrEventLogLost means events.db is behind the newest snapshot: the
	// file was lost, or replaced by an older copy. Snapshots hold no copy
	// of the event log, so the node cannot rebuild it from its own data
	// dir; the error says what to do (restore from a backup, or remove
	// the node, empty its data dir and join again).
	ErrEventLogLost = errors.New("the event log is behind the newest snapshot")
	// ErrBadSnapshot means a snapshot's content is neither Herald's
	// metadata header nor a bbolt file, or its state file does not match
	// the checksum in its metadata.
	ErrBadSnapshot = errors.New("bad snapshot")
)

const (
	snapshotDir    = "snapshots"
	snapMetaFile   = "meta.json"
	snapStateFile  = "state.bin"
	snapTmpSuffix  = ".tmp"
	snapRetain     = 2
	formatMetadata = "herald-metadata/1"
)

// The metadata header is all that FSM.Persist writes: 8 bytes of magic, a
// format version, and the event log's applied index and term when the
// snapshot was taken (uint64 BE). A bbolt file starts with page id 0
// (eight zero bytes), so the two can never be confused.
var metaMagic = []byte("HRLDMETA")

const metaHeaderLen = 8 + 1 + 8 + 8

func encodeMetaHeader(index, term uint64) []byte {
	b := make([]byte, 0, metaHeaderLen)
	b = append(b, metaMagic...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, index)
	return binary.BigEndian.AppendUint64(b, term)
}

func decodeMetaHeader(b []byte) (index, term uint64, ok bool) {
	if len(b) != metaHeaderLen || !bytes.HasPrefix(b, metaMagic) || b[8] != 1 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[9:]), binary.BigEndian.Uint64(b[17:]), true
}

// snapMeta is a snapshot's meta.json: the JSON raft's FileSnapshotStore
// writes (raft.SnapshotMeta and CRC, the CRC-64/ECMA of state.bin), which
// is what data dirs of earlier releases hold, plus the fields of a
// metadata-only snapshot (Format, StateIndex, StateTerm). A snapshot
// without Format is full: its state.bin is a bbolt file.
type snapMeta struct {
	raft.SnapshotMeta
	CRC []byte `json:",omitempty"`

	// Format is formatMetadata for a snapshot that holds no state: the
	// state is the live events.db, which must be at StateIndex or later.
	Format string `json:",omitempty"`
	// StateIndex and StateTerm are the event log's applied index and term
	// when the snapshot was taken. StateIndex can be below Index: raft
	// counts no-op and barrier entries, which never reach the FSM.
	StateIndex uint64 `json:",omitempty"`
	StateTerm  uint64 `json:",omitempty"`
}

func (m *snapMeta) metadataOnly() bool { return m.Format == formatMetadata }

// need is the lowest applied index events.db must have for this snapshot
// to describe it.
func (m *snapMeta) need() uint64 {
	if m.metadataOnly() {
		return m.StateIndex
	}
	return m.Index
}

// snapshotStore is Herald's raft.SnapshotStore, in DATA/snapshots/ (one
// directory per snapshot, named term-index-milliseconds as raft's
// FileSnapshotStore names them). A local snapshot (FSM.Persist) is
// metadata only: meta.json, fsynced, whatever the size of the log. Open
// of such a snapshot streams the current events.db from one read
// transaction (the leader sending InstallSnapshot), so the state sent is
// at the snapshot's index or later (DESIGN.md, Snapshots). A snapshot
// received from a leader, or left by an earlier release, is full (meta.json
// and state.bin, FileSnapshotStore's layout) until events.db covers it:
// then its state.bin is deleted and it becomes metadata only.
type snapshotStore struct {
	dir string
	db  *hlog.DB
	log *slog.Logger
	// local serves metadata-only snapshots to this node's own FSM (herald
	// recover: RecoverCluster restores the newest snapshot) as the
	// metadata header, which FSM.Restore takes to mean "keep the live
	// log", instead of streaming the log into itself.
	local bool

	mu sync.Mutex // orders finishing, reaping and dropping state files
}

// newSnapshotStore opens (creating) base/snapshots. It removes what an
// interrupted snapshot left and the state files events.db already covers.
func newSnapshotStore(base string, db *hlog.DB, logger *slog.Logger, local bool) (*snapshotStore, error) {
	s := &snapshotStore{dir: filepath.Join(base, snapshotDir), db: db, log: logger, local: local}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: snapshots: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshots: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), snapTmpSuffix) {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return nil, fmt.Errorf("raftstore: snapshots: %w", err)
			}
		}
	}
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if m.metadataOnly() {
			// A conversion that stopped between its two steps.
			if err := os.Remove(filepath.Join(s.dir, m.ID, snapStateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("raftstore: snapshots: %w", err)
			}
			continue
		}
		if err := s.dropStateIfCovered(m.ID); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reap(); err != nil {
		return nil, err
	}
	return s, nil
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

// Create begins a snapshot. What is written to the sink decides its kind:
// the metadata header (FSM.Persist) or a bbolt file (a leader's stream).
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("raftstore: unsupported snapshot version %d", version)
	}
	base := fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli())
	id, dir := base, ""
	for i := 1; ; i++ {
		dir = filepath.Join(s.dir, id+snapTmpSuffix)
		_, err := os.Stat(filepath.Join(s.dir, id))
		if errors.Is(err, os.ErrNotExist) {
			if err = os.Mkdir(dir, 0o700); err == nil {
				break
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("raftstore: create snapshot: %w", err)
		}
		id = fmt.Sprintf("%s-%d", base, i) // the same term, index and millisecond
	}
	return &snapshotSink{store: s, dir: dir, meta: snapMeta{SnapshotMeta: raft.SnapshotMeta{
		Version: version, ID: id, Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex,
	}}}, nil
}

// List returns the retained snapshots, newest first.
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	var out []*raft.SnapshotMeta
	for _, m := range all {
		out = append(out, &m.SnapshotMeta)
		if len(out) == snapRetain {
			break
		}
	}
	return out, nil
}

// Open returns a snapshot's metadata and its state. For a metadata-only
// snapshot that is a stream of the current events.db from one read
// transaction, and meta.Size its size (raft's receiver checks the bytes
// against it); on a local store, the metadata header. A full snapshot's
// state is its state.bin, checked against its CRC.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: open snapshot %s: %w", id, err)
	}
	if !m.metadataOnly() {
		return s.openFull(m)
	}
	meta := m.SnapshotMeta
	if s.local {
		applied, _, err := s.db.Applied()
		if err != nil {
			return nil, nil, err
		}
		if applied < m.StateIndex {
			return nil, nil, lostError(applied, m)
		}
		meta.Size = metaHeaderLen
		return &meta, io.NopCloser(bytes.NewReader(encodeMetaHeader(m.StateIndex, m.StateTerm))), nil
	}
	snap, err := s.db.BeginSnapshot()
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: open snapshot %s: %w", id, err)
	}
	if applied, _ := snap.Applied(); applied < m.StateIndex {
		snap.Close()
		return nil, nil, lostError(applied, m)
	}
	meta.Size = snap.Size()
	return &meta, streamState(snap), nil
}

// behind reports what events.db, at applied, lacks against the newest
// snapshot: nothing (""), the id of a full snapshot to restore it from,
// or ErrEventLogLost when the newest snapshot is metadata only.
func (s *snapshotStore) behind(applied uint64) (string, error) {
	all, err := s.all()
	if err != nil || len(all) == 0 || applied >= all[0].need() {
		return "", err
	}
	if all[0].metadataOnly() {
		return "", lostError(applied, all[0])
	}
	return all[0].ID, nil
}

func lostError(applied uint64, m *snapMeta) error {
	return fmt.Errorf("raftstore: %w: events.db is at index %d, snapshot %s needs %d; snapshots hold no copy of the event log, "+
		"so this node cannot rebuild it: restore events.db from a backup into a new data dir (herald restore), or remove "+
		"this node from the cluster (herald cluster remove), empty its data dir and start it again with --join",
		ErrEventLogLost, applied, m.ID, m.need())
}

// all reads every finished snapshot's metadata, newest first (by term,
// index and id, as raft's FileSnapshotStore sorts). Unreadable ones are
// skipped with a warning.
func (s *snapshotStore) all() ([]*snapMeta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshots: %w", err)
	}
	var out []*snapMeta
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapTmpSuffix) {
			continue
		}
		m, err := s.readMeta(e.Name())
		if err != nil {
			s.log.Warn("skipping unreadable snapshot", "id", e.Name(), "error", err)
			continue
		}
		if m.Version < raft.SnapshotVersionMin || m.Version > raft.SnapshotVersionMax {
			s.log.Warn("skipping snapshot of unsupported version", "id", e.Name(), "version", m.Version)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Term != b.Term {
			return a.Term > b.Term
		}
		if a.Index != b.Index {
			return a.Index > b.Index
		}
		return a.ID > b.ID
	})
	return out, nil
}

func (s *snapshotStore) readMeta(id string) (*snapMeta, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return nil, fmt.Errorf("%w: id %q", ErrBadSnapshot, id)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id, snapMetaFile))
	if err != nil {
		return nil, err
	}
	m := &snapMeta{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadSnapshot, snapMetaFile, err)
	}
	return m, nil
}

// writeSnapMeta writes dir/meta.json through a temporary file, fsynced and
// renamed into place, then fsyncs dir.
func writeSnapMeta(dir string, m *snapMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, snapMetaFile+snapTmpSuffix)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapMetaFile)); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// finish moves a written snapshot's temporary directory into place and
// reaps the snapshots it makes unnecessary.
func (s *snapshotStore) finish(tmpDir string, m *snapMeta) error {
	if err := writeSnapMeta(tmpDir, m); err != nil {
		os.RemoveAll(tmpDir)
		return fmt.Errorf("raftstore: snapshot %s: %w", m.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmpDir, filepath.Join(s.dir, m.ID)); err != nil {
		os.RemoveAll(tmpDir)
		return fmt.Errorf("raftstore: snapshot %s: %w", m.ID, err)
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return fmt.Errorf("raftstore: snapshot %s: %w", m.ID, err)
	}
	return s.reap()
}

// reap deletes the snapshots beyond the newest snapRetain, and every full
// snapshot older than a metadata-only one: the newer snapshot supersedes
// it, and restoring it would leave out the entries between the two. The
// caller holds s.mu.
func (s *snapshotStore) reap() error {
	all, err := s.all()
	if err != nil {
		return err
	}
	newerMeta := false
	for i, m := range all {
		if i >= snapRetain || newerMeta && !m.metadataOnly() {
			s.log.Info("removing snapshot", "id", m.ID, "full", !m.metadataOnly())
			if err := os.RemoveAll(filepath.Join(s.dir, m.ID)); err != nil {
				return fmt.Errorf("raftstore: remove snapshot %s: %w", m.ID, err)
			}
		}
		newerMeta = newerMeta || m.metadataOnly()
	}
	return nil
}

// dropStateIfCovered turns a full snapshot into a metadata-only one once
// events.db is at its index or later: its state.bin holds nothing the live
// log lacks. meta.json is rewritten first, then state.bin removed (a stop
// in between leaves a state.bin that newSnapshotStore removes).
func (s *snapshotStore) dropStateIfCovered(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.readMeta(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil // reaped meanwhile
	}
	if err != nil || m.metadataOnly() {
		return err
	}
	applied, _, err := s.db.Applied()
	if err != nil || applied < m.Index {
		return err
	}
	full := m.Size
	m.Format, m.StateIndex, m.StateTerm, m.CRC, m.Size = formatMetadata, m.Index, m.Term, nil, metaHeaderLen
	dir := filepath.Join(s.dir, id)
	if err := writeSnapMeta(dir, m); err != nil {
		return fmt.Errorf("raftstore: snapshot %s: %w", id, err)
	}
	if err := os.Remove(filepath.Join(dir, snapStateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftstore: snapshot %s: %w", id, err)
	}
	s.log.Info("dropped a snapshot's full copy of the event log: events.db covers it", "id", id, "index", m.Index, "applied", applied, "bytes", full)
	return nil
}

// openFull opens a full snapshot's state.bin after checking its CRC (as
// raft's FileSnapshotStore does). Closing the reader drops the file if
// events.db covers the snapshot by then (after a Restore from it).
func (s *snapshotStore) openFull(m *snapMeta) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(filepath.Join(s.dir, m.ID, snapStateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: open snapshot %s: %w", m.ID, err)
	}
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raftstore: open snapshot %s: %w", m.ID, err)
	}
	if !bytes.Equal(h.Sum(nil), m.CRC) {
		f.Close()
		return nil, nil, fmt.Errorf("raftstore: open snapshot %s: %w: %s does not match its CRC", m.ID, ErrBadSnapshot, snapStateFile)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	meta := m.SnapshotMeta
	return &meta, &fullState{Reader: bufio.NewReaderSize(f, 1<<20), f: f, store: s, id: m.ID}, nil
}

type fullState struct {
	io.Reader
	f     *os.File
	store *snapshotStore
	id    string
	once  sync.Once
}

func (r *fullState) Close() error {
	err := r.f.Close()
	r.once.Do(func() {
		if derr := r.store.dropStateIfCovered(r.id); derr != nil {
			r.store.log.Warn("could not drop a covered snapshot's state file", "id", r.id, "error", derr)
		}
	})
	return err
}

// stateStream is the live event log streamed from one read transaction
// (a leader's InstallSnapshot). The transaction is released as soon as the
// last byte is written, before the reader sees the end (herald recover
// with a full snapshot reads and then replaces the same log), or when the
// reader closes, or when a Replace interrupts it.
type stateStream struct {
	pr   *io.PipeReader
	done chan struct{}
}

var errStreamClosed = errors.New("raftstore: snapshot stream closed")

func streamState(snap *hlog.Snapshot) *stateStream {
	pr, pw := io.Pipe()
	st := &stateStream{pr: pr, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		_, err := snap.WriteTo(interruptiblePipe{pw})
		snap.Close()
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	return st
}

func (st *stateStream) Read(p []byte) (int, error) { return st.pr.Read(p) }

// Close ends the stream and waits until its read transaction is released.
func (st *stateStream) Close() error {
	st.pr.CloseWithError(errStreamClosed)
	<-st.done
	return nil
}

// interruptiblePipe unblocks a write waiting for the reader when a
// Replace interrupts the stream (log.Snapshot.WriteTo calls Interrupt).
type interruptiblePipe struct{ *io.PipeWriter }

func (w interruptiblePipe) Interrupt() { w.CloseWithError(hlog.ErrInterrupted) }

// snapshotSink receives a snapshot: the metadata header from FSM.Persist
// (kept in memory, then only meta.json is written) or a bbolt file from a
// leader (spilled to state.bin with its CRC).
type snapshotSink struct {
	store *snapshotStore
	dir   string // the temporary directory
	meta  snapMeta

	head  []byte // the bytes so far while they may be the metadata header
	state *os.File
	buf   *bufio.Writer
	crc   hash.Hash64
	done  bool
}

func (k *snapshotSink) ID() string { return k.meta.ID }

func (k *snapshotSink) Write(p []byte) (int, error) {
	if k.state == nil {
		cand := append(k.head, p...)
		if len(cand) <= metaHeaderLen && bytes.HasPrefix(cand, metaMagic[:min(len(cand), len(metaMagic))]) {
			k.head = cand
			return len(p), nil
		}
		if err := k.spill(); err != nil {
			return 0, err
		}
	}
	return k.buf.Write(p)
}

// spill starts state.bin with the bytes held so far.
func (k *snapshotSink) spill() error {
	f, err := os.OpenFile(filepath.Join(k.dir, snapStateFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("raftstore: snapshot %s: %w", k.meta.ID, err)
	}
	k.state = f
	k.crc = crc64.New(crc64.MakeTable(crc64.ECMA))
	k.buf = bufio.NewWriterSize(io.MultiWriter(f, k.crc), 1<<20)
	_, err = k.buf.Write(k.head)
	k.head = nil
	return err
}

// Close finishes the snapshot: meta.json alone for the metadata header,
// state.bin fsynced and meta.json for a full state.
func (k *snapshotSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	if k.state == nil {
		idx, term, ok := decodeMetaHeader(k.head)
		if !ok {
			os.RemoveAll(k.dir)
			return fmt.Errorf("raftstore: snapshot %s: %w: %d bytes, neither the metadata header nor a bbolt file", k.meta.ID, ErrBadSnapshot, len(k.head))
		}
		k.meta.Format, k.meta.StateIndex, k.meta.StateTerm, k.meta.Size = formatMetadata, idx, term, metaHeaderLen
		return k.store.finish(k.dir, &k.meta)
	}
	err := k.buf.Flush()
	if err == nil {
		err = k.state.Sync()
	}
	var st os.FileInfo
	if err == nil {
		st, err = k.state.Stat()
	}
	if cerr := k.state.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(k.dir)
		return fmt.Errorf("raftstore: snapshot %s: %w", k.meta.ID, err)
	}
	k.meta.Size, k.meta.CRC = st.Size(), k.crc.Sum(nil)
	return k.store.finish(k.dir, &k.meta)
}

// Cancel drops the snapshot.
func (k *snapshotSink) Cancel() error {
	if k.done {
		return nil
	}
	k.done = true
	if k.state != nil {
		k.state.Close()
	}
	return os.RemoveAll(k.dir)
}
