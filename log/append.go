package log

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/herald-io/herald/internal/wire"
	bolt "go.etcd.io/bbolt"
)

// appendFillPercent packs the append-only event buckets: keys only ever
// grow, so pages never need room for later inserts.
const appendFillPercent = 0.95

// Tx is a read-write transaction on the log, used by the FSM to apply a
// batch of Raft entries atomically. Everything it does is deterministic.
type Tx struct {
	tx          *bolt.Tx
	appended    bool
	appendedTo  []string // the stores appended to
	subsChanged bool
	keysChanged bool
	// types are the type indexes this transaction read or changed,
	// written back by flushTypes before it commits.
	types map[string]*storeTypes
	// idsInside names the stores whose id index this transaction wrote
	// below its last key (see packIDs).
	idsInside map[string]bool
}

// Appended is the outcome of one event in an Append.
type Appended struct {
	Event Event
	// Duplicate is true when the event's id (or idempotency key) was
	// already stored: Event is then the original and nothing was written.
	Duplicate bool
}

// StoreInfo summarises a store.
type StoreInfo struct {
	Name      string
	LastSeq   uint64
	HeadHash  string // hex; empty before the first event
	Events    uint64
	CreatedAt int64 // unix ns of the first event
	// FirstSeq is the first seq still stored (1 unless compacted).
	FirstSeq uint64
	// Set by the node: the retention policy in force (the store's own or
	// the server default), and the events it would remove now that
	// subscriptions still hold back (HeldBy: their ids, comma-separated).
	Retention *Retention
	HeldBack  uint64
	HeldBy    string
}

type storeMeta struct {
	lastSeq   uint64
	head      [32]byte
	events    uint64
	createdAt int64
	// firstSeq is the first seq still stored (compaction removed the ones
	// before it); base is the hash of the event before it, where the
	// chain continues. 0 / zero hash before any compaction.
	firstSeq uint64
	base     [32]byte
}

// first returns the first seq still stored.
func (m *storeMeta) first() uint64 {
	if m.firstSeq == 0 {
		return 1
	}
	return m.firstSeq
}

func (m *storeMeta) encode() []byte {
	b := make([]byte, 0, 112)
	b = append(b, 2)
	b = wire.AppendUint64(b, m.lastSeq)
	b = append(b, m.head[:]...)
	b = wire.AppendUint64(b, m.events)
	b = wire.AppendUint64(b, uint64(m.createdAt))
	b = wire.AppendUint64(b, m.firstSeq)
	return append(b, m.base[:]...)
}

func decodeStoreMeta(name string, v []byte) (storeMeta, error) {
	var m storeMeta
	r := wire.NewReader(v)
	version := r.Byte()
	if version != 1 && version != 2 {
		return m, fmt.Errorf("%w: store %s: unknown meta version", ErrCorrupt, name)
	}
	m.lastSeq = r.Uint64()
	for i := range m.head {
		m.head[i] = r.Byte()
	}
	m.events = r.Uint64()
	m.createdAt = int64(r.Uint64())
	if version == 2 {
		m.firstSeq = r.Uint64()
		for i := range m.base {
			m.base[i] = r.Byte()
		}
	}
	if r.Err() != nil {
		return m, fmt.Errorf("%w: store %s: %v", ErrCorrupt, name, r.Err())
	}
	return m, nil
}

func (m *storeMeta) info(name string) StoreInfo {
	si := StoreInfo{Name: name, LastSeq: m.lastSeq, Events: m.events, CreatedAt: m.createdAt, FirstSeq: m.first()}
	if m.lastSeq > 0 {
		si.HeadHash = HashHex(m.head)
	}
	return si
}

func seqFromKey(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// ValidateAppend checks a whole append request without touching the log,
// including that every event's data is valid JSON. Run it before
// proposing an append.
func ValidateAppend(store string, evs []NewEvent) error {
	return validateAppend(store, evs, (*NewEvent).Validate)
}

func validateAppend(store string, evs []NewEvent, check func(*NewEvent) error) error {
	if err := ValidateStoreName(store); err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalidEvent)
	}
	for i := range evs {
		if err := check(&evs[i]); err != nil {
			if len(evs) > 1 {
				return fmt.Errorf("events[%d]: %w", i, err)
			}
			return err
		}
	}
	return nil
}

// Append appends evs to store in order with contiguous seqs, all or
// nothing. Validation errors (ErrInvalidStore, ErrInvalidEvent) leave the
// transaction untouched; any other error means the transaction must be
// rolled back. Append checks every field but does not re-parse Data as
// JSON: callers validate requests with ValidateAppend before proposing.
// An appended event's Data is the NewEvent's (not a copy: callers must not
// change it); a duplicate's is read from the log.
func (t *Tx) Append(store string, evs []NewEvent) ([]Appended, error) {
	if err := validateAppend(store, evs, (*NewEvent).validateFields); err != nil {
		return nil, err
	}
	sb, err := t.tx.CreateBucketIfNotExists(storeBucketName(store))
	if err != nil {
		return nil, err
	}
	eb, err := sb.CreateBucketIfNotExists(subEvents)
	if err != nil {
		return nil, err
	}
	ib, err := sb.CreateBucketIfNotExists(subIDs)
	if err != nil {
		return nil, err
	}
	kb, err := sb.CreateBucketIfNotExists(subKeys)
	if err != nil {
		return nil, err
	}
	eb.FillPercent = appendFillPercent

	stores := t.tx.Bucket(bucketStores)
	var meta storeMeta
	if v := stores.Get([]byte(store)); v != nil {
		if meta, err = decodeStoreMeta(store, v); err != nil {
			return nil, err
		}
	}

	types, err := t.typesOf(store, sb)
	if err != nil {
		return nil, err
	}

	out := make([]Appended, len(evs))
	wrote := false
	lastID, _ := ib.Cursor().Last()
	atEdge := true // every new id sorts after the index's last key
	for i := range evs {
		ev := &evs[i]
		if seq, ok := lookupSeq(kb, ev.IdempotencyKey); ok && seq >= meta.first() {
			if out[i].Event, err = getBySeq(eb, store, seq); err != nil {
				return nil, err
			}
			out[i].Duplicate = true
			continue
		}
		if seq, ok := lookupSeq(ib, ev.ID); ok && seq >= meta.first() {
			if out[i].Event, err = getBySeq(eb, store, seq); err != nil {
				return nil, err
			}
			out[i].Duplicate = true
			continue
		}
		seq := meta.lastSeq + 1
		hash := chainHash(meta.head, store, seq, ev)
		rec := encodeRecord(ev, hash)
		k := seqKey(seq)
		if err := eb.Put(k, rec); err != nil {
			return nil, err
		}
		id := []byte(ev.ID)
		if bytes.Compare(id, lastID) > 0 {
			lastID = id
		} else {
			atEdge = false
		}
		if err := ib.Put(id, k); err != nil {
			return nil, err
		}
		if ev.IdempotencyKey != "" {
			if err := kb.Put([]byte(ev.IdempotencyKey), k); err != nil {
				return nil, err
			}
		}
		if err := types.add(ev.Type, seq, ev.Timestamp, meta.first()); err != nil {
			return nil, err
		}
		if meta.lastSeq == 0 {
			meta.createdAt = ev.Timestamp
		}
		meta.lastSeq = seq
		meta.head = hash
		meta.events++
		wrote = true
		out[i].Event = Event{ID: ev.ID, Store: store, Seq: seq, Type: ev.Type, Version: ev.Version,
			Timestamp: time.Unix(0, ev.Timestamp).UTC(), Data: ev.Data, Hash: HashHex(hash)}
	}
	t.packIDs(store, ib, atEdge)
	if wrote {
		if err := stores.Put([]byte(store), meta.encode()); err != nil {
			return nil, err
		}
		t.appended = true
		if !slices.Contains(t.appendedTo, store) {
			t.appendedTo = append(t.appendedTo, store)
		}
	}
	return out, nil
}

func lookupSeq(b *bolt.Bucket, key string) (uint64, bool) {
	if key == "" {
		return 0, false
	}
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func getBySeq(eb *bolt.Bucket, store string, seq uint64) (Event, error) {
	v := eb.Get(seqKey(seq))
	if v == nil {
		return Event{}, fmt.Errorf("%w: store %s: index points at missing seq %d", ErrCorrupt, store, seq)
	}
	ev, _, err := decodeRecord(store, seq, v)
	return ev, err
}

// SetApplied records the last applied Raft index and term, in the same
// transaction as the entries' effects, and that the type index was kept
// up to them (keyTypesAt).
func (t *Tx) SetApplied(index, term uint64) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], index)
	binary.BigEndian.PutUint64(v[8:], term)
	meta := t.tx.Bucket(bucketMeta)
	if err := meta.Put(keyApplied, v[:]); err != nil {
		return err
	}
	return meta.Put(keyTypesAt, v[:])
}

// Applied returns the applied index and term as seen by this transaction.
func (t *Tx) Applied() (index, term uint64) {
	v := t.tx.Bucket(bucketMeta).Get(keyApplied)
	if len(v) == 16 {
		return binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:])
	}
	return 0, 0
}

// packIDs sets how full the id index's pages are left when they split.
// Ids Herald generates are ULIDs, so they sort in publish order and land
// at the index's right edge, like seqs in the events bucket: bbolt's
// default split at 50% would leave every page of the index half empty
// (at 10 M events that was about 0.1 x the payload, issue 13). Packed
// pages suit only appends at the edge: a transaction that wrote any id
// inside the index (a client's own ids, or ULIDs of two nodes' clocks
// interleaving) keeps the default for that store, because a packed page
// that then takes an insert splits again at once. FillPercent is not
// stored: it applies to the pages this transaction splits when it commits.
func (t *Tx) packIDs(store string, ib *bolt.Bucket, atEdge bool) {
	if !atEdge {
		if t.idsInside == nil {
			t.idsInside = map[string]bool{}
		}
		t.idsInside[store] = true
	}
	if t.idsInside[store] {
		ib.FillPercent = bolt.DefaultFillPercent
	} else {
		ib.FillPercent = appendFillPercent
	}
}
