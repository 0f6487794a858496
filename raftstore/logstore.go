package raftstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/raft-wal/metadb"
	bolt "go.etcd.io/bbolt"
)

// The Raft log and stable store of a node: raft-boltdb (one bbolt file,
// DIR/raft.db) or hashicorp/raft-wal (segment files and a small bbolt
// file of metadata and stable keys in DIR/wal/). See DESIGN.md, Log store.
const (
	LogStoreBolt = "bolt"
	LogStoreWAL  = "wal"
)

// DefaultWALSegmentSize is raft-wal's own default: a segment is sealed
// (and can then be deleted whole by a snapshot's truncation) once it holds
// this much.
const DefaultWALSegmentSize = 64 << 20

// Names in the data dir.
const (
	boltFile = "raft.db"
	walDir   = "wal"
	// convertingFile exists while ConvertLogStore runs; it holds the name
	// of the store being written (convert.go).
	convertingFile = "raft-log-store.converting"
)

// defaultLogStore is the store of a data dir that holds none yet. This
// package's tests set it from HERALD_TEST_RAFT_LOG_STORE.
var defaultLogStore = LogStoreWAL

// lockTimeout bounds the wait for a store's file lock: a store that is
// locked belongs to a running node.
const lockTimeout = 5 * time.Second

// ErrLogStore means the log store asked for does not match what the data
// dir holds (or the dir holds both), or is not one of LogStoreBolt and
// LogStoreWAL. Nothing was opened or changed.
var ErrLogStore = errors.New("raft log store does not match the data dir")

// logStore is what both stores are: Raft's log and its stable store.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// dirState is what a data dir holds of Raft's log stores.
type dirState struct {
	bolt, wal bool
	// converting is the store an unfinished ConvertLogStore was writing
	// ("" when none).
	converting string
}

func readDirState(dir string) (dirState, error) {
	var st dirState
	exists := func(p string) (bool, error) {
		_, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	var err error
	if st.bolt, err = exists(filepath.Join(dir, boltFile)); err != nil {
		return st, err
	}
	// A wal/ without its metadata file holds nothing raft-wal wrote.
	if st.wal, err = exists(filepath.Join(dir, walDir, metadb.FileName)); err != nil {
		return st, err
	}
	b, err := os.ReadFile(filepath.Join(dir, convertingFile))
	switch {
	case err == nil:
		st.converting = string(b)
	case !errors.Is(err, fs.ErrNotExist):
		return st, err
	}
	return st, nil
}

// HasState reports whether dir holds a Raft log store (raft.db or wal/).
func HasState(dir string) bool {
	st, err := readDirState(dir)
	return err != nil || st.bolt || st.wal // unreadable: assume state, never bootstrap over it
}

// ChooseLogStore returns the log store a node on dir uses. want is
// LogStoreBolt, LogStoreWAL or "" for what dir holds (LogStoreWAL for a
// dir that holds none). A want that contradicts the dir, or a dir that
// holds both stores, is ErrLogStore: a node never starts on an empty log
// beside the one it has, and never converts one silently.
//
// The one exception to "both is an error" is a conversion that did not
// finish (ConvertLogStore crashed or was killed): until it renames the
// old store away, the old one is the node's log.
func ChooseLogStore(dir, want string) (string, error) {
	kind, _, err := chooseLogStore(dir, want)
	return kind, err
}

func chooseLogStore(dir, want string) (string, dirState, error) {
	if want != "" && want != LogStoreBolt && want != LogStoreWAL {
		return "", dirState{}, fmt.Errorf("%w: unknown log store %q (want %s or %s)", ErrLogStore, want, LogStoreBolt, LogStoreWAL)
	}
	st, err := readDirState(dir)
	if err != nil {
		return "", st, fmt.Errorf("raftstore: %w", err)
	}
	var kind string
	switch {
	case st.bolt && st.wal && (st.converting == LogStoreBolt || st.converting == LogStoreWAL):
		kind = otherStore(st.converting)
		if want != "" && want != kind {
			return "", st, fmt.Errorf("%w: %s: a conversion to %s did not finish, so the node's Raft log is still %s (%s); run herald convert-log-store --data %s --to %s again to finish it, or start with %s",
				ErrLogStore, dir, want, kind, storePath(dir, kind), dir, want, kind)
		}
		return kind, st, nil
	case st.bolt && st.wal:
		return "", st, fmt.Errorf("%w: %s holds both %s (bolt) and %s (wal), and --raft-log-store cannot tell which is this node's Raft log: move the one that is not out of the data dir (docs/reliability.md, Raft log store)",
			ErrLogStore, dir, boltFile, walDir+"/")
	case st.bolt:
		kind = LogStoreBolt
	case st.wal:
		kind = LogStoreWAL
	case want != "":
		return want, st, nil
	default:
		return defaultLogStore, st, nil
	}
	if want != "" && want != kind {
		return "", st, fmt.Errorf("%w: %s holds a %s Raft log (%s), not %s: convert it on the stopped node with herald convert-log-store --data %s --to %s, or start without --raft-log-store to keep %s",
			ErrLogStore, dir, kind, storePath(dir, kind), want, dir, want, kind)
	}
	return kind, st, nil
}

func otherStore(kind string) string {
	if kind == LogStoreBolt {
		return LogStoreWAL
	}
	return LogStoreBolt
}

// storePath is where a store of kind lives in dir.
func storePath(dir, kind string) string {
	if kind == LogStoreBolt {
		return filepath.Join(dir, boltFile)
	}
	return filepath.Join(dir, walDir)
}

// openLogStore opens (creating if need be) the store of kind at path: the
// bbolt file for bolt, the directory for wal.
func openLogStore(path, kind string, segmentSize int, logger hclog.Logger) (logStore, error) {
	switch kind {
	case LogStoreBolt:
		s, err := raftboltdb.New(raftboltdb.Options{
			Path: path,
			BoltOptions: &bolt.Options{
				Timeout:        lockTimeout,
				NoFreelistSync: true,
				FreelistType:   bolt.FreelistMapType,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("raftstore: open %s (is the node still running?): %w", path, err)
		}
		return s, nil
	case LogStoreWAL:
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("raftstore: %w", err)
		}
		// raft-wal opens its metadata file without a lock timeout: a
		// running node would make it wait for ever. Fail like bbolt does.
		if err := checkUnlocked(filepath.Join(path, metadb.FileName)); err != nil {
			return nil, err
		}
		if segmentSize == 0 {
			segmentSize = DefaultWALSegmentSize
		}
		return openWALStore(path, segmentSize, logger.Named("wal"))
	}
	return nil, fmt.Errorf("%w: unknown log store %q", ErrLogStore, kind)
}

// checkUnlocked fails when another open of the bbolt file at path holds
// its lock (a missing file is not locked).
func checkUnlocked(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("raftstore: open %s (is the node still running?): %w", path, err)
	}
	return db.Close()
}

// logStoreSize is the disk use of the store of kind in dir: the bbolt
// file's size, or the sum of the files in wal/ (segments are preallocated
// to the segment size).
func logStoreSize(dir, kind string) (int64, error) {
	if kind == LogStoreBolt {
		st, err := os.Stat(filepath.Join(dir, boltFile))
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, walDir))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n, nil
}

// noteConversion reports what an unfinished ConvertLogStore left in the
// dir the node now opens on kind, and removes its marker once it says
// nothing any more (only one store is left).
func (s *Store) noteConversion(st dirState, kind string) {
	dir := s.cfg.Dir
	if st.converting != "" {
		if st.bolt && st.wal {
			s.log.Warn("a conversion of the Raft log store did not finish; the node runs on its old store, the new copy is out of date: run herald convert-log-store again",
				"store", kind, "unfinished", storePath(dir, otherStore(kind)))
			return
		}
		if err := os.Remove(filepath.Join(dir, convertingFile)); err == nil {
			s.log.Info("removed the marker of an earlier log store conversion", "file", convertingFile)
		}
	}
	for _, k := range []string{LogStoreBolt, LogStoreWAL} {
		if tmp := convertTempPath(dir, k); exists(tmp) {
			s.log.Warn("an interrupted log store conversion left a partial copy; herald convert-log-store removes it, or delete it", "path", tmp)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
