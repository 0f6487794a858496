package log

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-io/herald/internal/fsutil"
	bolt "go.etcd.io/bbolt"
)

// bucketRetention holds per-store retention policies: store -> JSON.
var bucketRetention = []byte("retention")

// ErrInvalidRetention means a retention policy is out of range; nothing
// was changed.
var ErrInvalidRetention = errors.New("invalid retention policy")

// Retention bounds how much of a store is kept. Zero fields are no limit.
type Retention struct {
	MaxAge    time.Duration `json:"max_age,omitempty"`
	MaxEvents uint64        `json:"max_events,omitempty"`
}

// IsZero reports whether r sets no limit.
func (r Retention) IsZero() bool { return r.MaxAge == 0 && r.MaxEvents == 0 }

// Validate checks a policy: max_age at least a minute, if set.
func (r Retention) Validate() error {
	if r.MaxAge < 0 || (r.MaxAge > 0 && r.MaxAge < time.Minute) {
		return fmt.Errorf("%w: max_age must be at least 1m", ErrInvalidRetention)
	}
	return nil
}

// MaxCompactPerCommand bounds the events one compaction command removes,
// so one Raft entry never holds a huge transaction.
const MaxCompactPerCommand = 10000

// SetRetention sets (or, with a zero policy, clears) a store's retention
// policy. The store need not have events yet.
func (t *Tx) SetRetention(store string, r Retention) error {
	if err := ValidateStoreName(store); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketRetention)
	if err != nil {
		return err
	}
	if r.IsZero() {
		return b.Delete([]byte(store))
	}
	v, _ := json.Marshal(r)
	return b.Put([]byte(store), v)
}

// RetentionOf returns a store's own policy (zero when it has none).
func (d *DB) RetentionOf(store string) (Retention, error) {
	var r Retention
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRetention)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(store)); v != nil {
			return json.Unmarshal(v, &r)
		}
		return nil
	})
	return r, err
}

func firstSeq(tx *bolt.Tx, store string) (uint64, error) {
	v := tx.Bucket(bucketStores).Get([]byte(store))
	if v == nil {
		return 1, nil
	}
	m, err := decodeStoreMeta(store, v)
	if err != nil {
		return 0, err
	}
	return m.first(), nil
}

// HoldBack returns the lowest seq of store that some subscription still
// has to deliver or retry (its cursor + 1, or its lowest retry entry), and
// the ids of the subscriptions holding the lowest; ^uint64(0) when none.
func (d *DB) HoldBack(store string) (uint64, []string, error) {
	var hold uint64
	var by []string
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		hold, by, err = holdBack(tx, store)
		return err
	})
	return hold, by, err
}

func holdBack(tx *bolt.Tx, store string) (uint64, []string, error) {
	hold := ^uint64(0)
	var by []string
	err := tx.Bucket(bucketSubs).ForEach(func(_, v []byte) error {
		s, err := decodeSub(v)
		if err != nil || s.Store != store {
			return err
		}
		need := s.Cursor + 1
		if db := tx.Bucket(deliveryBucketName(s.ID)); db != nil {
			if k, _ := db.Bucket(subRetry).Cursor().First(); k != nil {
				need = min(need, seqFromKey(k))
			}
		}
		switch {
		case need < hold:
			hold, by = need, []string{s.ID}
		case need == hold:
			by = append(by, s.ID)
		}
		return nil
	})
	return hold, by, err
}

// Compact removes the events of store with seq <= upTo, oldest first, at
// most MaxCompactPerCommand of them, but never one a subscription still
// has to deliver or retry (see HoldBack): upTo is lowered to just below
// that. It returns the number removed. The chain stays verifiable: the
// store records the hash of the last removed event as its base. The type
// index no longer counts the removed events.
func (t *Tx) Compact(store string, upTo uint64) (uint64, error) {
	if err := ValidateStoreName(store); err != nil {
		return 0, err
	}
	stores := t.tx.Bucket(bucketStores)
	v := stores.Get([]byte(store))
	if v == nil {
		return 0, nil
	}
	meta, err := decodeStoreMeta(store, v)
	if err != nil {
		return 0, err
	}
	hold, _, err := holdBack(t.tx, store)
	if err != nil {
		return 0, err
	}
	if hold != ^uint64(0) && upTo >= hold {
		upTo = hold - 1
	}
	upTo = min(upTo, meta.lastSeq, meta.first()+MaxCompactPerCommand-1)
	if upTo < meta.first() {
		return 0, nil
	}
	sb := t.tx.Bucket(storeBucketName(store))
	eb, ib := sb.Bucket(subEvents), sb.Bucket(subIDs)
	types, err := t.typesOf(store, sb)
	if err != nil {
		return 0, err
	}
	var removed uint64
	for seq := meta.first(); seq <= upTo; seq++ {
		k := seqKey(seq)
		rec := eb.Get(k)
		if rec == nil {
			return 0, fmt.Errorf("%w: store %s: gap at seq %d", ErrCorrupt, store, seq)
		}
		ev, hash, err := decodeRecord(store, seq, rec)
		if err != nil {
			return 0, err
		}
		if err := ib.Delete([]byte(ev.ID)); err != nil {
			return 0, err
		}
		if err := eb.Delete(k); err != nil {
			return 0, err
		}
		if err := types.remove(ev.Type); err != nil {
			return 0, err
		}
		meta.base = hash
		removed++
	}
	// Idempotency keys pointing below firstSeq are ignored from now on
	// (Append checks); they are not scanned for here.
	meta.firstSeq = upTo + 1
	meta.events -= removed
	return removed, stores.Put([]byte(store), meta.encode())
}

// CompactionTarget returns the highest seq of store that policy r allows
// removing at now: everything beyond MaxEvents from the end, and
// everything older than MaxAge (scanning at most MaxCompactPerCommand
// records). 0 when nothing is due.
func (d *DB) CompactionTarget(store string, r Retention, now time.Time) (uint64, error) {
	var target uint64
	err := d.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStores).Get([]byte(store))
		if v == nil {
			return nil
		}
		m, err := decodeStoreMeta(store, v)
		if err != nil {
			return err
		}
		first := m.first()
		if r.MaxEvents > 0 && m.lastSeq >= first && m.lastSeq-first+1 > r.MaxEvents {
			target = m.lastSeq - r.MaxEvents
		}
		if r.MaxAge > 0 {
			cutoff := now.Add(-r.MaxAge).UnixNano()
			c := tx.Bucket(storeBucketName(store)).Bucket(subEvents).Cursor()
			n := 0
			for k, v := c.Seek(seqKey(max(first, target+1))); k != nil && n < MaxCompactPerCommand; k, v = c.Next() {
				ev, _, err := decodeRecord(store, seqFromKey(k), v)
				if err != nil {
					return err
				}
				if ev.Timestamp.UnixNano() >= cutoff {
					break
				}
				target = max(target, ev.Seq)
				n++
			}
		}
		return nil
	})
	return target, err
}

// CompactFile rewrites the bbolt file at path without its free pages
// (offline: no process may have it open), keeping the original until the
// copy is fsynced and checked. It returns the sizes before and after.
// Retention frees pages that bbolt reuses for new events; only this gives
// the space back to the file system.
func CompactFile(path string) (before, after int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return 0, 0, openError(path, err) // ErrLocked while a node runs on it
	}
	defer src.Close()
	tmp := path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, 0, err
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("log: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, err
	}
	dst.Close()
	if err := checkFile(tmp); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	src.Close()
	if err := os.Rename(tmp, path); err != nil {
		return 0, 0, err
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return 0, 0, err
	}
	nst, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), nst.Size(), nil
}
