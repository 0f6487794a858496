package log

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/herald-io/herald/internal/wire"
	bolt "go.etcd.io/bbolt"
)

// The type index: per store, the event types of its stored events, each
// with how many there are and the newest one's seq and timestamp. It is
// kept by Tx.Append and Tx.Compact in the transaction that changes the
// events, so it is part of the replicated state like the events
// themselves (see DESIGN.md, "The type index").

var (
	// subTypes is the sub-bucket of a store's bucket ("s/<name>") that
	// holds its type index: event type -> typeEntry, and under
	// keyTypesMeta the index's own state (typesMeta).
	subTypes = []byte("t")
	// keyTypesMeta sorts before every type: a type is 1-128 characters of
	// [A-Za-z0-9._/-], never a zero byte.
	keyTypesMeta = []byte{0}
	// keyTypesAt, in the meta bucket, is the applied Raft index and term
	// (the value of keyApplied) at which the type index was last kept:
	// SetApplied writes both. A file whose keyTypesAt is missing or differs
	// from keyApplied was last written by a release that did not keep the
	// index (or the index was never built): openBolt rebuilds it.
	keyTypesAt = []byte("types_at")
)

// MaxTypesPerStore bounds the types a store's index tracks. A type first
// seen once the index holds this many is not added (the index says
// Truncated) until retention has removed every event whose type was left
// out. The bound is part of the replicated state machine: every replica
// must apply the same value, so changing it is a change of the FSM's
// rules, made like any other (docs/api.md#limits documents it).
const MaxTypesPerStore = 1000

// TypeInfo is one event type of a store: how many of the store's stored
// events have it, and the newest of them.
type TypeInfo struct {
	Type     string
	Count    uint64 // events of this type still stored
	LastSeq  uint64 // seq of the newest
	LastSeen int64  // its timestamp (unix ns), as stored in the event
}

// StoreTypes is a store's type index, by type name. Truncated means some
// stored events have a type the index does not list (the store reached
// MaxTypesPerStore types).
type StoreTypes struct {
	Types     []TypeInfo
	Truncated bool
}

// typeEntry is one type's value in the index (version 1: count, last
// seq, last timestamp, 8 bytes each).
type typeEntry struct {
	count    uint64
	lastSeq  uint64
	lastSeen int64
	dirty    bool // changed in this transaction
}

const typeEntryV1 = 1

func (e *typeEntry) encode() []byte {
	b := make([]byte, 0, 25)
	b = append(b, typeEntryV1)
	b = wire.AppendUint64(b, e.count)
	b = wire.AppendUint64(b, e.lastSeq)
	return wire.AppendUint64(b, uint64(e.lastSeen))
}

func decodeTypeEntry(store string, typ, v []byte) (*typeEntry, error) {
	r := wire.NewReader(v)
	if r.Byte() != typeEntryV1 {
		return nil, fmt.Errorf("%w: store %s: type %.100q: unknown index version", ErrCorrupt, store, typ)
	}
	e := &typeEntry{count: r.Uint64(), lastSeq: r.Uint64(), lastSeen: int64(r.Uint64())}
	if r.Err() != nil || r.Len() != 0 || e.count == 0 {
		return nil, fmt.Errorf("%w: store %s: type %.100q: bad index entry", ErrCorrupt, store, typ)
	}
	return e, nil
}

// storeTypes is one store's index as a transaction sees it: the entries
// it read or changed, written back (once per type) when the transaction
// ends (flush), so a batch of many events costs one small write per type
// it touched, not one per event.
type storeTypes struct {
	store string
	b     *bolt.Bucket // the store's subTypes bucket
	// tracked is the number of types in the index; refusedUpTo the seq
	// of the newest event whose type was not added (0: none). The index
	// is truncated while that event is still stored.
	tracked     uint64
	refusedUpTo uint64
	metaDirty   bool
	// entries are the types read or changed in this transaction; a nil
	// value is a type removed from the index here (its last event went).
	entries map[string]*typeEntry
}

const typesMetaV1 = 1

func loadStoreTypes(store string, b *bolt.Bucket) (*storeTypes, error) {
	s := &storeTypes{store: store, b: b, entries: map[string]*typeEntry{}}
	if v := b.Get(keyTypesMeta); v != nil {
		var err error
		if s.tracked, s.refusedUpTo, err = decodeTypesMeta(store, v); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func decodeTypesMeta(store string, v []byte) (tracked, refusedUpTo uint64, err error) {
	r := wire.NewReader(v)
	if r.Byte() != typesMetaV1 {
		return 0, 0, fmt.Errorf("%w: store %s: unknown type index version", ErrCorrupt, store)
	}
	tracked, refusedUpTo = r.Uint64(), r.Uint64()
	if r.Err() != nil || r.Len() != 0 || tracked > MaxTypesPerStore {
		return 0, 0, fmt.Errorf("%w: store %s: bad type index state", ErrCorrupt, store)
	}
	return tracked, refusedUpTo, nil
}

func (s *storeTypes) encodeMeta() []byte {
	b := make([]byte, 0, 17)
	b = append(b, typesMetaV1)
	b = wire.AppendUint64(b, s.tracked)
	return wire.AppendUint64(b, s.refusedUpTo)
}

// truncated reports whether a stored event has a type the index lacks:
// the newest refused event is at or after the store's first seq.
func (s *storeTypes) truncated(firstSeq uint64) bool {
	return s.refusedUpTo != 0 && s.refusedUpTo >= firstSeq
}

// get returns the type's entry, or nil when the index does not track it.
func (s *storeTypes) get(typ string) (*typeEntry, error) {
	if e, ok := s.entries[typ]; ok {
		return e, nil
	}
	v := s.b.Get([]byte(typ))
	if v == nil {
		return nil, nil // not cached: an untracked type stays a lookup
	}
	e, err := decodeTypeEntry(s.store, []byte(typ), v)
	if err != nil {
		return nil, err
	}
	s.entries[typ] = e
	return e, nil
}

// add counts a new event of type typ at seq. A type the index lacks is
// added only while it tracks fewer than MaxTypesPerStore types and is not
// truncated (otherwise the type may have stored events it never counted);
// else the event is refused: the index is truncated until it is removed.
func (s *storeTypes) add(typ string, seq uint64, ts int64, firstSeq uint64) error {
	e, err := s.get(typ)
	if err != nil {
		return err
	}
	if e != nil {
		e.count++
		e.lastSeq, e.lastSeen, e.dirty = seq, ts, true
		return nil
	}
	s.metaDirty = true
	if s.tracked >= MaxTypesPerStore || s.truncated(firstSeq) {
		s.refusedUpTo = seq
		return nil
	}
	s.entries[typ] = &typeEntry{count: 1, lastSeq: seq, lastSeen: ts, dirty: true}
	s.tracked++
	return nil
}

// remove uncounts an event of type typ that compaction removed. Every
// stored event of a tracked type was counted (a type is only added when
// no stored event lacks a type in the index), so a type whose count
// reaches 0 has no events left and leaves the index. Compaction removes
// the oldest events, so a type with events left keeps its newest.
func (s *storeTypes) remove(typ string) error {
	e, err := s.get(typ)
	if err != nil || e == nil {
		return err // an event whose type was refused
	}
	if e.count > 1 {
		e.count--
		e.dirty = true
		return nil
	}
	s.entries[typ] = nil
	if s.tracked > 0 {
		s.tracked--
	}
	s.metaDirty = true
	return nil
}

// flush writes what this transaction changed, in type order.
func (s *storeTypes) flush() error {
	for _, typ := range slices.Sorted(maps.Keys(s.entries)) {
		e := s.entries[typ]
		switch {
		case e == nil:
			if err := s.b.Delete([]byte(typ)); err != nil {
				return err
			}
		case e.dirty:
			if err := s.b.Put([]byte(typ), e.encode()); err != nil {
				return err
			}
			e.dirty = false
		}
	}
	if s.metaDirty {
		s.metaDirty = false
		return s.b.Put(keyTypesMeta, s.encodeMeta())
	}
	return nil
}

// typesOf returns store's index as this transaction sees it; sb is the
// store's bucket.
func (t *Tx) typesOf(store string, sb *bolt.Bucket) (*storeTypes, error) {
	if s := t.types[store]; s != nil {
		return s, nil
	}
	b, err := sb.CreateBucketIfNotExists(subTypes)
	if err != nil {
		return nil, err
	}
	s, err := loadStoreTypes(store, b)
	if err != nil {
		return nil, err
	}
	if t.types == nil {
		t.types = map[string]*storeTypes{}
	}
	t.types[store] = s
	return s, nil
}

// flushTypes writes the type indexes this transaction changed, store by
// store in name order; Update calls it before committing.
func (t *Tx) flushTypes() error {
	for _, store := range slices.Sorted(maps.Keys(t.types)) {
		if err := t.types[store].flush(); err != nil {
			return err
		}
	}
	return nil
}

// appliedValue is the meta bucket's applied index and term, 16 zero bytes
// when none is recorded.
func appliedValue(meta *bolt.Bucket) []byte {
	if v := meta.Get(keyApplied); len(v) == 16 {
		return v
	}
	return make([]byte, 16)
}

// typesCurrent reports whether the type index was kept up to the
// file's applied index.
func typesCurrent(btx *bolt.Tx) bool {
	meta := btx.Bucket(bucketMeta)
	return bytes.Equal(meta.Get(keyTypesAt), appliedValue(meta))
}

// rebuildTypes builds every store's type index from its stored events,
// in seq order with the rules of Tx.Append, and marks the index current.
// It depends on the stored events alone, so every replica holding the
// same events builds the same index, at whatever applied index it runs.
// It returns the stores and events scanned.
func rebuildTypes(btx *bolt.Tx) (stores, events int, err error) {
	c := btx.Bucket(bucketStores).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		name := string(k)
		m, err := decodeStoreMeta(name, v)
		if err != nil {
			return stores, events, err
		}
		n, err := rebuildStoreTypes(btx, name, &m)
		if err != nil {
			return stores, events, err
		}
		stores++
		events += n
	}
	meta := btx.Bucket(bucketMeta)
	return stores, events, meta.Put(keyTypesAt, bytes.Clone(appliedValue(meta)))
}

func rebuildStoreTypes(btx *bolt.Tx, store string, m *storeMeta) (int, error) {
	sb := btx.Bucket(storeBucketName(store))
	if sb == nil {
		return 0, fmt.Errorf("%w: store %s has a summary but no events bucket", ErrCorrupt, store)
	}
	if sb.Bucket(subTypes) != nil {
		if err := sb.DeleteBucket(subTypes); err != nil {
			return 0, err
		}
	}
	b, err := sb.CreateBucket(subTypes)
	if err != nil {
		return 0, err
	}
	s := &storeTypes{store: store, b: b, entries: map[string]*typeEntry{}, metaDirty: true}
	n := 0
	if eb := sb.Bucket(subEvents); eb != nil {
		first := m.first()
		c := eb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := seqFromKey(k)
			typ, ts, err := peekTypeAndTime(store, seq, v)
			if err != nil {
				return n, err
			}
			if err := s.add(typ, seq, ts, first); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, s.flush()
}

// peekTypeAndTime reads an event record's type and timestamp without
// copying its data.
func peekTypeAndTime(store string, seq uint64, v []byte) (string, int64, error) {
	r := wire.NewReader(v)
	if r.Byte() != recordV1 {
		return "", 0, fmt.Errorf("%w: store %s seq %d: unknown record version", ErrCorrupt, store, seq)
	}
	r.Bytes() // id
	typ := r.String()
	r.Bytes() // version
	ts := int64(r.Uint64())
	if r.Err() != nil {
		return "", 0, fmt.Errorf("%w: store %s seq %d: %v", ErrCorrupt, store, seq, r.Err())
	}
	return typ, ts, nil
}

// Types returns store's type index, by type name, or ErrStoreNotFound
// before its first event (as Store does).
func (d *DB) Types(store string) (StoreTypes, error) {
	if err := ValidateStoreName(store); err != nil {
		return StoreTypes{}, err
	}
	var out StoreTypes
	err := d.view(func(tx *bolt.Tx) error {
		m, err := readStoreMeta(tx, store)
		if err != nil {
			return err
		}
		out.Types = []TypeInfo{}
		sb := tx.Bucket(storeBucketName(store))
		if sb == nil || sb.Bucket(subTypes) == nil {
			return nil
		}
		b := sb.Bucket(subTypes)
		s, err := loadStoreTypes(store, b)
		if err != nil {
			return err
		}
		out.Truncated = s.truncated(m.first())
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Equal(k, keyTypesMeta) {
				continue
			}
			e, err := decodeTypeEntry(store, k, v)
			if err != nil {
				return err
			}
			out.Types = append(out.Types, TypeInfo{Type: string(k), Count: e.count, LastSeq: e.lastSeq, LastSeen: e.lastSeen})
		}
		return nil
	})
	return out, err
}

// VerifyTypes checks store's type index against its stored events: every
// listed type's count, newest seq and timestamp; that the index lists
// every stored type unless it says it is truncated, and says so only when
// some stored event's type is missing; and its bound. It scans the whole
// store (a check for tests and tools, not for the serving path).
func (d *DB) VerifyTypes(store string) error {
	got, err := d.Types(store)
	if err != nil {
		return err
	}
	return d.view(func(tx *bolt.Tx) error {
		sb := tx.Bucket(storeBucketName(store))
		if sb == nil || sb.Bucket(subTypes) == nil {
			return fmt.Errorf("%w: store %s has no type index", ErrCorrupt, store)
		}
		want := map[string]*TypeInfo{}
		if eb := sb.Bucket(subEvents); eb != nil {
			c := eb.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				seq := seqFromKey(k)
				typ, ts, err := peekTypeAndTime(store, seq, v)
				if err != nil {
					return err
				}
				ti := want[typ]
				if ti == nil {
					ti = &TypeInfo{Type: typ}
					want[typ] = ti
				}
				ti.Count++
				ti.LastSeq, ti.LastSeen = seq, ts
			}
		}
		if len(got.Types) > MaxTypesPerStore {
			return fmt.Errorf("%w: store %s: type index lists %d types, over %d", ErrCorrupt, store, len(got.Types), MaxTypesPerStore)
		}
		s, err := loadStoreTypes(store, sb.Bucket(subTypes))
		if err != nil {
			return err
		}
		if s.tracked != uint64(len(got.Types)) {
			return fmt.Errorf("%w: store %s: type index counts %d types, lists %d", ErrCorrupt, store, s.tracked, len(got.Types))
		}
		for _, ti := range got.Types {
			w := want[ti.Type]
			if w == nil || *w != ti {
				return fmt.Errorf("%w: store %s: type index has %+v, the events say %+v", ErrCorrupt, store, ti, w)
			}
		}
		if missing := len(want) - len(got.Types); missing > 0 != got.Truncated {
			return fmt.Errorf("%w: store %s: type index lists %d of %d stored types, truncated %v", ErrCorrupt, store, len(got.Types), len(want), got.Truncated)
		}
		return nil
	})
}
