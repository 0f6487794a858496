package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/internal/fsutil"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketMeta   = []byte("meta")
	bucketStores = []byte("stores")
	bucketNodes  = []byte("nodes")
	keyApplied   = []byte("applied")

	// Sub-buckets of a store's bucket ("s/<name>").
	subEvents = []byte("e") // seq (8 bytes BE) -> record
	subIDs    = []byte("i") // event id -> seq
	subKeys   = []byte("k") // idempotency key -> seq
)

func storeBucketName(store string) []byte { return []byte("s/" + store) }

// Options tune the bbolt file. The zero value is a good default.
type Options struct {
	// InitialMmapSize is the initial mmap size; a large value lets readers
	// and the writer proceed without blocking on remaps. Default 1 GiB.
	InitialMmapSize int
	// Logger receives the log subsystem's messages. Default slog.Default().
	Logger *slog.Logger
}

// DB is Herald's event log: stores, their events in sequence, the id and
// idempotency indexes, cluster node metadata and the last applied Raft
// index, all in one bbolt file. Every Update is one fsynced bbolt
// transaction.
type DB struct {
	path string
	opts Options
	log  *slog.Logger

	mu sync.RWMutex // guards db against Replace
	db *bolt.DB

	chMu        sync.Mutex
	changed     chan struct{}
	subsChanged chan struct{}
	// storeChanged holds, per store that a reader waits on, a channel
	// closed at the store's next append (and then dropped).
	storeChanged map[string]chan struct{}
	// streams are the backups (WriteToContext) and snapshot streams
	// (BeginSnapshot) in progress, for Replace to interrupt.
	streams map[*context.CancelCauseFunc]struct{}
	// replacing is closed when the Replace under way ends (nil when none
	// is): a stream that would begin meanwhile waits for it or gives up.
	replacing chan struct{}
	replaceMu sync.Mutex // one Replace at a time

	keysVersion atomic.Uint64 // bumped by every commit that changed keys
}

// Open opens (creating if needed) the log at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.InitialMmapSize == 0 {
		opts.InitialMmapSize = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &DB{path: path, opts: opts, log: opts.Logger, changed: make(chan struct{}), subsChanged: make(chan struct{})}
	db, err := d.openBolt()
	if err != nil {
		return nil, err
	}
	d.db = db
	return d, nil
}

func (d *DB) openBolt() (*bolt.DB, error) {
	if err := checkLength(d.path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{
		Timeout:         lockTimeout,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: d.opts.InitialMmapSize,
	})
	if err != nil {
		return nil, openError(d.path, err)
	}
	var rebuilt bool
	var stores, events int
	start := time.Now()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketStores, bucketNodes, bucketSubs, bucketKeys, bucketHashes, bucketTokens} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if typesCurrent(tx) {
			return nil
		}
		// Written by a release without the type index (or by one that
		// did not keep it since): build it once from the events.
		rebuilt = true
		var err error
		stores, events, err = rebuildTypes(tx)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("log: init %s: %w", d.path, err)
	}
	if rebuilt && stores > 0 {
		d.log.Info("built the event type index from the stored events", "path", d.path, "stores", stores, "events", events, "duration", time.Since(start))
	}
	return db, nil
}

// lockTimeout is how long opening the log waits for bbolt's file lock
// (flock): long enough for a process that is just exiting to let go, short
// enough that a second node on the same data directory fails at once.
const lockTimeout = 500 * time.Millisecond

// openError words a failed bolt.Open of path. bbolt reports a lock it
// could not get within its Timeout as a bare "timeout"; that becomes
// ErrLocked, naming the directory and the file.
func openError(path string, err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("log: %w: %s (%s is locked; stop the other process or use another data directory)",
			ErrLocked, filepath.Dir(path), filepath.Base(path))
	}
	return fmt.Errorf("log: open %s: %w", path, err)
}

// checkLength refuses a bbolt file shorter than its newest meta page says
// (a lost tail: a bad copy, a disk that lost writes). bbolt would open it
// and fault on the first access past the end.
func checkLength(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("log: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	const magic = 0xED0CDAED
	meta := func(off int64) (pgid, txid uint64, pageSize uint32, ok bool) {
		var b [64]byte
		if _, err := f.ReadAt(b[:], off+16); err != nil {
			return 0, 0, 0, false
		}
		if binary.LittleEndian.Uint32(b[0:]) != magic {
			return 0, 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[40:]), binary.LittleEndian.Uint64(b[48:]), binary.LittleEndian.Uint32(b[8:]), true
	}
	pg0, tx0, size, ok0 := meta(0)
	if !ok0 || size < 512 {
		return nil // not bbolt's layout as known here: let bbolt judge
	}
	pgid := pg0
	if pg1, tx1, _, ok1 := meta(int64(size)); ok1 && tx1 > tx0 {
		pgid = pg1
	}
	if need := int64(pgid) * int64(size); need > st.Size() {
		return fmt.Errorf("log: open %s: %w: the file is truncated (%d bytes, the database needs %d); rebuild this node from the others (see docs/reliability.md)", path, ErrCorrupt, st.Size(), need)
	}
	return nil
}

// Path returns the file path of the log.
func (d *DB) Path() string { return d.path }

// Close closes the log. Later calls return ErrClosed.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return ErrClosed
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// view runs fn in a read transaction.
func (d *DB) view(fn func(*bolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.db == nil {
		return ErrClosed
	}
	return d.db.View(fn)
}

// Changed returns a channel that is closed the next time events are
// appended. Long-polling readers take it before reading, then wait on it.
func (d *DB) Changed() <-chan struct{} {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	return d.changed
}

// SubsChanged returns a channel that is closed the next time a
// subscription is created, changed through the API, disabled or deleted
// (not when only its delivery state moves).
func (d *DB) SubsChanged() <-chan struct{} {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	return d.subsChanged
}

func (d *DB) notifySubs() {
	d.chMu.Lock()
	close(d.subsChanged)
	d.subsChanged = make(chan struct{})
	d.chMu.Unlock()
}

func (d *DB) waitedStores() []string {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	out := make([]string, 0, len(d.storeChanged))
	for s := range d.storeChanged {
		out = append(out, s)
	}
	return out
}

// StoreChanged returns a channel that is closed the next time events are
// appended to store: a long-polling reader of one store is woken by that
// store's appends only.
func (d *DB) StoreChanged(store string) <-chan struct{} {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	if d.storeChanged == nil {
		d.storeChanged = map[string]chan struct{}{}
	}
	ch := d.storeChanged[store]
	if ch == nil {
		ch = make(chan struct{})
		d.storeChanged[store] = ch
	}
	return ch
}

func (d *DB) notify(stores []string) {
	d.chMu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	for _, s := range stores {
		if ch := d.storeChanged[s]; ch != nil {
			close(ch)
			delete(d.storeChanged, s)
		}
	}
	d.chMu.Unlock()
}

// Update runs fn in one read-write transaction, committed (and fsynced) when
// fn returns nil. The FSM applies a whole batch of Raft entries in one
// Update.
func (d *DB) Update(fn func(*Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.db == nil {
		return ErrClosed
	}
	t := &Tx{}
	err := d.db.Update(func(btx *bolt.Tx) error {
		t.tx = btx
		if err := fn(t); err != nil {
			return err
		}
		return t.flushTypes()
	})
	if err == nil && t.appended {
		d.notify(t.appendedTo)
	}
	if err == nil && t.subsChanged {
		d.notifySubs()
	}
	if err == nil && t.keysChanged {
		d.keysVersion.Add(1)
	}
	return err
}

// Applied returns the last Raft index and term recorded by SetApplied.
func (d *DB) Applied() (index, term uint64, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		index, term = appliedIn(tx)
		return nil
	})
	return index, term, err
}

// appliedIn reads the applied index and term in tx (zero before the first
// SetApplied).
func appliedIn(tx *bolt.Tx) (index, term uint64) {
	v := tx.Bucket(bucketMeta).Get(keyApplied)
	if len(v) == 16 {
		index = binary.BigEndian.Uint64(v[:8])
		term = binary.BigEndian.Uint64(v[8:])
	}
	return index, term
}

// WriteTo writes a consistent copy of the whole log to w (a bbolt file),
// from one read transaction.
func (d *DB) WriteTo(w io.Writer) (int64, error) {
	return d.WriteToContext(context.Background(), w)
}

// ErrInterrupted ends a backup stream that a snapshot install needed out
// of the way (Replace).
var ErrInterrupted = errors.New("log: backup interrupted: the event log is being replaced from a snapshot")

// WriteToContext is WriteTo that ends when ctx does, and when Replace
// needs the log: a slow backup reader holds a read transaction, and must
// not hold a snapshot install (or, behind it, every write) for as long
// as it likes. If w has an Interrupt method it is called then, to unblock
// a write in progress (the API sets the connection's write deadline).
func (d *DB) WriteToContext(ctx context.Context, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if in, ok := w.(interface{ Interrupt() }); ok {
		stop := context.AfterFunc(ctx, in.Interrupt)
		defer stop()
	}
	var n int64
	err := d.view(func(tx *bolt.Tx) error {
		if d.track(&cancel) != nil {
			// A Replace waits for the read lock this view holds.
			return ErrInterrupted
		}
		defer d.untrack(&cancel)
		var err error
		n, err = tx.WriteTo(&ctxWriter{ctx: ctx, w: w})
		return err
	})
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = fmt.Errorf("%w (after %d bytes)", cause, n)
	}
	return n, err
}

// track registers cancel as a stream for Replace to interrupt. The caller
// holds the read lock. While a Replace is under way it registers nothing
// and returns a channel closed when the Replace ends: the caller must let
// go of its read lock (which the Replace waits for) and may wait on it.
func (d *DB) track(cancel *context.CancelCauseFunc) <-chan struct{} {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	if d.replacing != nil {
		return d.replacing
	}
	if d.streams == nil {
		d.streams = map[*context.CancelCauseFunc]struct{}{}
	}
	d.streams[cancel] = struct{}{}
	return nil
}

func (d *DB) untrack(cancel *context.CancelCauseFunc) {
	d.chMu.Lock()
	delete(d.streams, cancel)
	d.chMu.Unlock()
}

// ctxWriter fails writes once its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// beginReplace ends every stream in progress (their read transactions
// would hold Replace's lock for as long as their readers like) and makes
// streams that would begin until endReplace wait or give up.
func (d *DB) beginReplace() {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	d.replacing = make(chan struct{})
	for c := range d.streams {
		(*c)(ErrInterrupted)
	}
}

func (d *DB) endReplace() {
	d.chMu.Lock()
	defer d.chMu.Unlock()
	close(d.replacing)
	d.replacing = nil
}

// Snapshot is a read transaction held open for streaming a consistent copy
// of the log while writes go on. Release it with Close. A Replace
// interrupts its WriteTo (the stream fails with ErrInterrupted) rather
// than wait behind it.
type Snapshot struct {
	d      *DB
	tx     *bolt.Tx
	ctx    context.Context
	cancel *context.CancelCauseFunc
}

// BeginSnapshot starts a Snapshot at the current state. Called while a
// Replace runs, it waits for the Replace and begins on the new file.
func (d *DB) BeginSnapshot() (*Snapshot, error) {
	for {
		d.mu.RLock()
		if d.db == nil {
			d.mu.RUnlock()
			return nil, ErrClosed
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		if wait := d.track(&cancel); wait != nil {
			d.mu.RUnlock()
			cancel(nil)
			<-wait
			continue
		}
		tx, err := d.db.Begin(false)
		if err != nil {
			d.untrack(&cancel)
			cancel(nil)
			d.mu.RUnlock()
			return nil, err
		}
		// The read lock is held until Close so Replace cannot swap the
		// file under an open transaction.
		return &Snapshot{d: d, tx: tx, ctx: ctx, cancel: &cancel}, nil
	}
}

// Applied returns the Raft index and term recorded in the snapshot's
// state (what Applied returned when it began).
func (s *Snapshot) Applied() (index, term uint64) { return appliedIn(s.tx) }

// Size is the number of bytes WriteTo writes: the size of the bbolt file
// as of the snapshot.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo streams the snapshot as a bbolt file of exactly Size bytes. If
// w has an Interrupt method it is called when a Replace interrupts the
// stream, to unblock a write in progress.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	if in, ok := w.(interface{ Interrupt() }); ok {
		stop := context.AfterFunc(s.ctx, in.Interrupt)
		defer stop()
	}
	n, err := s.tx.WriteTo(&ctxWriter{ctx: s.ctx, w: w})
	if cause := context.Cause(s.ctx); err != nil && cause != nil {
		err = fmt.Errorf("%w (after %d bytes)", cause, n)
	}
	return n, err
}

// Close releases the snapshot's transaction.
func (s *Snapshot) Close() error {
	if s.tx == nil {
		return nil
	}
	s.d.untrack(s.cancel)
	(*s.cancel)(nil)
	err := s.tx.Rollback()
	s.tx = nil
	s.d.mu.RUnlock()
	return err
}

// Replace atomically replaces the whole log with the bbolt file read from
// r: it is written to a temporary file beside the log, fsynced, checked,
// renamed over the log and the directory fsynced; only then is the new file
// opened. On error the old log stays in place and open.
func (d *DB) Replace(r io.Reader) error {
	dir := filepath.Dir(d.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(d.path)+".restore-*")
	if err != nil {
		return fmt.Errorf("log: replace: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("log: replace: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("log: replace: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("log: replace: %w", err)
	}
	if err := checkFile(tmpName); err != nil {
		return fmt.Errorf("log: replace: incoming file: %w", err)
	}

	d.replaceMu.Lock()
	defer d.replaceMu.Unlock()
	d.beginReplace() // a stream's read transaction would hold the lock below
	defer d.endReplace()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return ErrClosed
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("log: replace: close: %w", err)
	}
	d.db = nil
	if err := os.Rename(tmpName, d.path); err != nil {
		// Reopen the old file so the DB stays usable.
		db, oerr := d.openBolt()
		if oerr == nil {
			d.db = db
		}
		return errors.Join(fmt.Errorf("log: replace: rename: %w", err), oerr)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("log: replace: %w", err)
	}
	db, err := d.openBolt()
	if err != nil {
		return err
	}
	d.db = db
	d.log.Info("log replaced from snapshot", "path", d.path)
	d.notify(d.waitedStores()) // any store may have moved
	d.notifySubs()
	d.keysVersion.Add(1)
	return nil
}

// CheckFile opens a bbolt file read-only and runs its consistency check.
func CheckFile(path string) error { return checkFile(path) }

// PrepareRestore turns a copy of some node's event log (a backup) into the
// starting state of a new cluster: it checks the file, resets the applied
// Raft index (the new cluster's log starts again at 1) and forgets the old
// cluster's node addresses. Events, seqs and hashes are untouched.
func PrepareRestore(path string) error {
	if err := checkFile(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketStores, bucketNodes, bucketSubs, bucketKeys, bucketHashes, bucketTokens} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: not a Herald event log (no %q bucket)", ErrCorrupt, b)
			}
		}
		meta := tx.Bucket(bucketMeta)
		// The events stay as they are, so a current type index stays
		// current at the reset applied index.
		current := typesCurrent(tx)
		if err := meta.Delete(keyApplied); err != nil {
			return err
		}
		if current {
			if err := meta.Put(keyTypesAt, appliedValue(meta)); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bucketNodes); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketNodes)
		return err
	})
	return errors.Join(err, db.Close())
}

// checkFile opens a bbolt file read-only and runs its consistency check.
func checkFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return firstCheckError(tx)
	})
}

// Check runs bbolt's consistency check on the open log and returns the
// first problem found.
func (d *DB) Check() error {
	return d.view(func(tx *bolt.Tx) error {
		return firstCheckError(tx)
	})
}

// firstCheckError drains bbolt's consistency check (its goroutine must run
// to completion before the transaction ends) and returns the first problem.
func firstCheckError(tx *bolt.Tx) error {
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return first
}
