package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/fsutil"
)

// The stable-store keys hashicorp/raft (v1.7) writes, in the order it
// writes them when it votes and then moves to the new term. Herald writes
// none of its own.
var (
	stableUint64Keys = [][]byte{[]byte("LastVoteTerm"), []byte("CurrentTerm")}
	stableBytesKeys  = [][]byte{[]byte("LastVoteCand")}
)

// convertBatch bounds one append of the copy (entries, and bytes).
const (
	convertBatchEntries = 1024
	convertBatchBytes   = 16 << 20
)

// ConvertResult says what ConvertLogStore did.
type ConvertResult struct {
	From, To string
	// First and Last are the indexes of the entries copied (both 0 for an
	// empty log), Entries how many.
	First, Last, Entries uint64
	// CurrentTerm is the node's term, as the new store holds it.
	CurrentTerm uint64
	// Backup is the path the old store was renamed to (never removed).
	Backup string
	// AlreadyDone means the dir already used To: nothing was copied.
	AlreadyDone bool
}

// convertHook, when set (tests), is called after each step of a
// conversion; when it returns true the conversion stops there as if the
// process had been killed: no clean-up.
var convertHook func(step string) bool

var errConvertKilled = errors.New("conversion stopped by the test hook")

// ConvertLogStore copies the Raft log and stable store of the stopped node
// in dir from the store it has into a new one of kind to (LogStoreWAL or
// LogStoreBolt), and keeps the old store, renamed, as a backup.
//
// Every entry and the stable keys (the current term and the last vote)
// are copied into a new store under a temporary name, written with
// fsync, read back and compared with the old store entry by entry; only
// then is the copy renamed into place and the old store renamed away. The
// last rename is the commit: until then a marker file (removed at the end)
// tells ChooseLogStore that the old store is still the node's log, so a
// conversion killed at any point leaves a node that starts on its
// original store, and running it again starts over. Running it on a dir
// that already uses to changes nothing (AlreadyDone).
//
// The node must be stopped: a store in use is locked, and opening it
// fails. Snapshots and the event log are not touched.
func ConvertLogStore(dir, to string, logger *slog.Logger) (res ConvertResult, err error) {
	if to != LogStoreBolt && to != LogStoreWAL {
		return res, fmt.Errorf("%w: unknown log store %q (want %s or %s)", ErrLogStore, to, LogStoreBolt, LogStoreWAL)
	}
	if logger == nil {
		logger = slog.Default()
	}
	from := otherStore(to)
	res.From, res.To = from, to
	st, err := readDirState(dir)
	if err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	has := func(kind string) bool { return kind == LogStoreBolt && st.bolt || kind == LogStoreWAL && st.wal }
	switch {
	case st.bolt && st.wal && st.converting == to:
		// An earlier run stopped before it committed; the node may have
		// run on the old store since, so its copy is out of date.
		logger.Warn("an earlier conversion did not finish; starting over", "removing", storePath(dir, to))
		if err := os.RemoveAll(storePath(dir, to)); err != nil {
			return res, fmt.Errorf("raftstore: convert: %w", err)
		}
	case st.bolt && st.wal && st.converting == from:
		// An unfinished conversion the other way: the node's log is to.
		res.AlreadyDone = true
		return res, cleanUpConversion(dir, from)
	case st.bolt && st.wal:
		_, _, err := chooseLogStore(dir, "")
		return res, err
	case !has(from) && has(to):
		res.AlreadyDone = true
		return res, cleanUpConversion(dir, to)
	case !has(from):
		return res, fmt.Errorf("raftstore: convert: %w: %s holds neither %s nor %s", ErrNoState, dir, boltFile, walDir+"/")
	}

	hcl := newHCLogger(logger, "raft")
	src, err := openLogStore(storePath(dir, from), from, 0, hcl)
	if err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	defer src.Close()

	committed := false
	defer func() {
		if err != nil && !committed && !errors.Is(err, errConvertKilled) {
			err = errors.Join(err, cleanUpConversion(dir, to))
		}
	}()
	if err := writeFileSync(filepath.Join(dir, convertingFile), []byte(to)); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	if convertHook != nil && convertHook("marked") {
		return res, errConvertKilled
	}
	tmp := convertTempPath(dir, to)
	if err := os.RemoveAll(tmp); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	if res, err = copyLogStore(src, tmp, res, hcl, logger); err != nil {
		return res, err
	}
	if err := verifyLogStore(src, tmp, to, hcl); err != nil {
		return res, err
	}
	if convertHook != nil && convertHook("copied") {
		return res, errConvertKilled
	}
	if err := os.Rename(tmp, storePath(dir, to)); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	if convertHook != nil && convertHook("renamed") {
		return res, errConvertKilled
	}
	// The commit: from here the data dir holds only the new store.
	if err := src.Close(); err != nil {
		return res, fmt.Errorf("raftstore: convert: close %s: %w", storePath(dir, from), err)
	}
	res.Backup = backupPath(storePath(dir, from))
	if err := os.Rename(storePath(dir, from), res.Backup); err != nil {
		return res, fmt.Errorf("raftstore: convert: keep the old store: %w", err)
	}
	committed = true
	if err := fsutil.SyncDir(dir); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	if convertHook != nil && convertHook("committed") {
		return res, errConvertKilled
	}
	if err := cleanUpConversion(dir, to); err != nil {
		return res, err
	}
	logger.Info("raft log store converted", "from", from, "to", to, "entries", res.Entries,
		"first", res.First, "last", res.Last, "term", res.CurrentTerm, "backup", res.Backup)
	return res, nil
}

// copyLogStore writes every entry and the stable keys of src into a new
// store of res.To at path, in batches, each appended with an fsync.
func copyLogStore(src logStore, path string, res ConvertResult, hcl hclog.Logger, logger *slog.Logger) (_ ConvertResult, err error) {
	dst, err := openLogStore(path, res.To, 0, hcl)
	if err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	defer func() {
		if cerr := dst.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("raftstore: convert: close %s: %w", path, cerr)
		}
	}()
	if res.First, res.Last, err = bounds(src); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	start := time.Now()
	logger.Info("copying the Raft log", "from", res.From, "to", res.To, "first", res.First, "last", res.Last)
	batch := make([]*raft.Log, 0, convertBatchEntries)
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.StoreLogs(batch); err != nil {
			return fmt.Errorf("raftstore: convert: write entries %d-%d: %w", batch[0].Index, batch[len(batch)-1].Index, err)
		}
		res.Entries += uint64(len(batch))
		batch, size = batch[:0], 0
		return nil
	}
	for idx := res.First; res.Last > 0 && idx <= res.Last; idx++ {
		l := new(raft.Log)
		if err := src.GetLog(idx, l); err != nil {
			return res, fmt.Errorf("raftstore: convert: read entry %d: %w", idx, err)
		}
		batch = append(batch, l)
		size += len(l.Data) + len(l.Extensions)
		if len(batch) == convertBatchEntries || size >= convertBatchBytes {
			if err := flush(); err != nil {
				return res, err
			}
			if convertHook != nil && convertHook("batch") {
				return res, errConvertKilled
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	for _, k := range stableUint64Keys {
		v, err := getUint64(src, k)
		if err != nil {
			return res, fmt.Errorf("raftstore: convert: read %s: %w", k, err)
		}
		if v == 0 {
			continue // never set: raft reads a missing key as 0
		}
		if err := dst.SetUint64(k, v); err != nil {
			return res, fmt.Errorf("raftstore: convert: write %s: %w", k, err)
		}
	}
	for _, k := range stableBytesKeys {
		v, err := getBytes(src, k)
		if err != nil {
			return res, fmt.Errorf("raftstore: convert: read %s: %w", k, err)
		}
		if len(v) == 0 {
			continue
		}
		if err := dst.Set(k, v); err != nil {
			return res, fmt.Errorf("raftstore: convert: write %s: %w", k, err)
		}
	}
	if res.CurrentTerm, err = getUint64(dst, []byte("CurrentTerm")); err != nil {
		return res, fmt.Errorf("raftstore: convert: %w", err)
	}
	logger.Info("copied the Raft log", "entries", res.Entries, "took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// verifyLogStore opens the store of kind at path again and compares it
// with src: the same first and last index, every entry alike, the same
// stable keys.
func verifyLogStore(src logStore, path, kind string, hcl hclog.Logger) (err error) {
	dst, err := openLogStore(path, kind, 0, hcl)
	if err != nil {
		return fmt.Errorf("raftstore: convert: reopen the copy: %w", err)
	}
	defer func() { err = errors.Join(err, dst.Close()) }()
	sf, sl, err := bounds(src)
	if err != nil {
		return fmt.Errorf("raftstore: convert: %w", err)
	}
	df, dl, err := bounds(dst)
	if err != nil {
		return fmt.Errorf("raftstore: convert: %w", err)
	}
	if sf != df || sl != dl {
		return fmt.Errorf("%w: the copy holds entries %d-%d, the old store %d-%d", ErrConvertMismatch, df, dl, sf, sl)
	}
	for idx := sf; sl > 0 && idx <= sl; idx++ {
		var a, b raft.Log
		if err := src.GetLog(idx, &a); err != nil {
			return fmt.Errorf("raftstore: convert: read entry %d: %w", idx, err)
		}
		if err := dst.GetLog(idx, &b); err != nil {
			return fmt.Errorf("%w: entry %d: %v", ErrConvertMismatch, idx, err)
		}
		if a.Index != b.Index || a.Term != b.Term || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) ||
			!bytes.Equal(a.Extensions, b.Extensions) || !a.AppendedAt.Equal(b.AppendedAt) {
			return fmt.Errorf("%w: entry %d differs", ErrConvertMismatch, idx)
		}
	}
	for _, k := range stableUint64Keys {
		a, err1 := getUint64(src, k)
		b, err2 := getUint64(dst, k)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("raftstore: convert: %s: %w", k, err)
		}
		if a != b {
			return fmt.Errorf("%w: %s is %d in the copy, %d in the old store", ErrConvertMismatch, k, b, a)
		}
	}
	for _, k := range stableBytesKeys {
		a, err1 := getBytes(src, k)
		b, err2 := getBytes(dst, k)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("raftstore: convert: %s: %w", k, err)
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%w: %s is %q in the copy, %q in the old store", ErrConvertMismatch, k, b, a)
		}
	}
	return nil
}

func bounds(s raft.LogStore) (first, last uint64, err error) {
	if first, err = s.FirstIndex(); err != nil {
		return 0, 0, err
	}
	last, err = s.LastIndex()
	return first, last, err
}

// getUint64 and getBytes read a stable key, a missing one as zero:
// raft-boltdb reports it as an error "not found", raft-wal as no value
// (raft itself treats both as unset).
func getUint64(s raft.StableStore, k []byte) (uint64, error) {
	v, err := s.GetUint64(k)
	if err != nil && err.Error() == "not found" {
		return 0, nil
	}
	return v, err
}

func getBytes(s raft.StableStore, k []byte) ([]byte, error) {
	v, err := s.Get(k)
	if err != nil && err.Error() == "not found" {
		return nil, nil
	}
	return v, err
}

// convertTempPath is where ConvertLogStore writes a new store of kind
// before it is complete.
func convertTempPath(dir, kind string) string { return storePath(dir, kind) + ".converting" }

// backupPath is a name for the old store beside path that is not taken.
func backupPath(path string) string {
	base := path + ".bak-" + time.Now().UTC().Format("20060102T150405Z")
	p := base
	for i := 2; exists(p); i++ {
		p = fmt.Sprintf("%s-%d", base, i)
	}
	return p
}

// cleanUpConversion removes what an unfinished conversion to kind left
// beside a dir whose log is the other store (or, once it committed, the
// marker alone): the partial copy, a copy renamed into place but not
// committed, and the marker.
func cleanUpConversion(dir, kind string) error {
	st, err := readDirState(dir)
	if err != nil {
		return err
	}
	var errs []error
	errs = append(errs, os.RemoveAll(convertTempPath(dir, kind)))
	if st.bolt && st.wal && st.converting == kind {
		errs = append(errs, os.RemoveAll(storePath(dir, kind)))
	}
	if err := os.Remove(filepath.Join(dir, convertingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, fsutil.SyncDir(dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftstore: convert: clean up: %w", err)
	}
	return nil
}

// writeFileSync writes a small file and fsyncs it and its directory.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
