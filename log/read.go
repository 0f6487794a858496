package log

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/herald-io/herald/internal/wire"
	bolt "go.etcd.io/bbolt"
)

// DefaultMaxScan bounds how many records one filtered Read examines, so a
// rare type in a long log cannot pin a read transaction.
const DefaultMaxScan = 10000

// ReadOptions select events from a store.
type ReadOptions struct {
	After   uint64    // return events with seq > After
	Limit   int       // at most this many events (default 100)
	Types   []Pattern // empty matches every type
	MaxScan int       // records examined at most (default DefaultMaxScan)
	// MaxBytes stops a read once the returned events' data adds up to this
	// many bytes (default DefaultMaxReadBytes); at least one event is
	// returned when one matches.
	MaxBytes int
}

// DefaultMaxReadBytes bounds the data one Read returns, so a page of large
// events cannot balloon a response.
const DefaultMaxReadBytes = 4 << 20

// Read returns events of store in seq order, and next: the seq to pass as
// After to continue (the last seq examined, which is past the last
// returned event when a type filter skipped records). A store with no
// events yet reads as empty, so a consumer may poll before the first
// publish.
func (d *DB) Read(store string, o ReadOptions) (events []Event, next uint64, err error) {
	if err := ValidateStoreName(store); err != nil {
		return nil, 0, err
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if o.MaxScan <= 0 {
		o.MaxScan = DefaultMaxScan
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxReadBytes
	}
	size := 0
	next = o.After
	err = d.view(func(tx *bolt.Tx) error {
		sb := tx.Bucket(storeBucketName(store))
		if sb == nil {
			return nil
		}
		if first, err := firstSeq(tx, store); err != nil {
			return err
		} else if o.After+1 < first {
			return &CompactedError{Store: store, FirstSeq: first}
		}
		c := sb.Bucket(subEvents).Cursor()
		scanned := 0
		for k, v := c.Seek(seqKey(o.After + 1)); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if len(o.Types) > 0 {
				// Peek at the type without decoding the whole record.
				r := wire.NewReader(v[1:])
				r.Bytes() // id
				typ := r.Bytes()
				if r.Err() != nil {
					return fmt.Errorf("%w: store %s seq %d", ErrCorrupt, store, seq)
				}
				if !MatchAny(o.Types, string(typ)) {
					next = seq
					scanned++
					if scanned >= o.MaxScan {
						break
					}
					continue
				}
			}
			ev, _, err := decodeRecord(store, seq, v)
			if err != nil {
				return err
			}
			events = append(events, ev)
			next = seq
			scanned++
			size += len(ev.Data)
			if len(events) >= o.Limit || scanned >= o.MaxScan || size >= o.MaxBytes {
				break
			}
		}
		return nil
	})
	return events, next, err
}

// Get returns the event with the given id in store.
func (d *DB) Get(store, id string) (Event, error) {
	if err := ValidateStoreName(store); err != nil {
		return Event{}, err
	}
	var ev Event
	err := d.view(func(tx *bolt.Tx) error {
		sb := tx.Bucket(storeBucketName(store))
		if sb == nil {
			return fmt.Errorf("%w: %s in store %s", ErrEventNotFound, id, store)
		}
		seq, ok := lookupSeq(sb.Bucket(subIDs), id)
		if !ok {
			return fmt.Errorf("%w: %s in store %s", ErrEventNotFound, id, store)
		}
		var err error
		ev, err = getBySeq(sb.Bucket(subEvents), store, seq)
		return err
	})
	return ev, err
}

// GetSeq returns the event at seq in store.
func (d *DB) GetSeq(store string, seq uint64) (Event, error) {
	var ev Event
	err := d.view(func(tx *bolt.Tx) error {
		sb := tx.Bucket(storeBucketName(store))
		if sb == nil || sb.Bucket(subEvents).Get(seqKey(seq)) == nil {
			if first, err := firstSeq(tx, store); err == nil && seq < first {
				return &CompactedError{Store: store, FirstSeq: first}
			}
			return fmt.Errorf("%w: seq %d in store %s", ErrEventNotFound, seq, store)
		}
		var err error
		ev, err = getBySeq(sb.Bucket(subEvents), store, seq)
		return err
	})
	return ev, err
}

// readStoreMeta reads store's metadata, or ErrStoreNotFound before its
// first event.
func readStoreMeta(tx *bolt.Tx, store string) (storeMeta, error) {
	v := tx.Bucket(bucketStores).Get([]byte(store))
	if v == nil {
		return storeMeta{}, fmt.Errorf("%w: %s", ErrStoreNotFound, store)
	}
	return decodeStoreMeta(store, v)
}

// Store returns a store's summary, or ErrStoreNotFound.
func (d *DB) Store(name string) (StoreInfo, error) {
	if err := ValidateStoreName(name); err != nil {
		return StoreInfo{}, err
	}
	var si StoreInfo
	err := d.view(func(tx *bolt.Tx) error {
		m, err := readStoreMeta(tx, name)
		if err != nil {
			return err
		}
		si = m.info(name)
		return nil
	})
	return si, err
}

// Stores lists every store, by name.
func (d *DB) Stores() ([]StoreInfo, error) {
	var out []StoreInfo
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStores).ForEach(func(k, v []byte) error {
			m, err := decodeStoreMeta(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, m.info(string(k)))
			return nil
		})
	})
	return out, err
}

// VerifyChain recomputes the hash chain of store from its first stored seq
// (1 unless compacted, then from the recorded base hash) and checks it
// against every stored hash and the store's head. It is the integrity check
// behind "two nodes with the same head hash hold the same log".
func (d *DB) VerifyChain(store string) error {
	return d.view(func(tx *bolt.Tx) error {
		m, err := readStoreMeta(tx, store)
		if err != nil {
			return err
		}
		prev, want := m.base, m.first()
		c := tx.Bucket(storeBucketName(store)).Bucket(subEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq != want {
				return fmt.Errorf("%w: store %s: gap: seq %d after %d", ErrCorrupt, store, seq, want-1)
			}
			ev, stored, err := decodeRecord(store, seq, v)
			if err != nil {
				return err
			}
			ne := NewEvent{ID: ev.ID, Type: ev.Type, Version: ev.Version, Timestamp: ev.Timestamp.UnixNano(), Data: ev.Data}
			if got := chainHash(prev, store, seq, &ne); got != stored {
				return fmt.Errorf("%w: store %s seq %d: hash mismatch", ErrCorrupt, store, seq)
			}
			prev = stored
			want++
		}
		if want-1 != m.lastSeq || prev != m.head {
			return fmt.Errorf("%w: store %s: head does not match events", ErrCorrupt, store)
		}
		return nil
	})
}

// NodeMeta is what the cluster records about a member beyond Raft's own
// configuration: where its HTTP API listens.
type NodeMeta struct {
	ID       string
	RaftAddr string
	HTTPAddr string
}

func encodeNode(n NodeMeta) []byte {
	b := []byte{1}
	b = wire.AppendString(b, n.RaftAddr)
	return wire.AppendString(b, n.HTTPAddr)
}

// SetNode records (or replaces) a node's metadata.
func (t *Tx) SetNode(n NodeMeta) error {
	if err := ValidateNode(n); err != nil {
		return err // before any write: the FSM returns it as the result
	}
	return t.tx.Bucket(bucketNodes).Put([]byte(n.ID), encodeNode(n))
}

// DeleteNode forgets a node's metadata.
func (t *Tx) DeleteNode(id string) error {
	return t.tx.Bucket(bucketNodes).Delete([]byte(id))
}

// Nodes returns the recorded node metadata, by id.
func (d *DB) Nodes() ([]NodeMeta, error) {
	var out []NodeMeta
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			r := wire.NewReader(v)
			if r.Byte() != 1 {
				return fmt.Errorf("%w: node %s", ErrCorrupt, k)
			}
			n := NodeMeta{ID: string(k), RaftAddr: r.String(), HTTPAddr: r.String()}
			if r.Err() != nil {
				return fmt.Errorf("%w: node %s", ErrCorrupt, k)
			}
			out = append(out, n)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}
