package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Subscription returns one subscription.
func (d *DB) Subscription(id string) (Subscription, error) {
	var s Subscription
	err := d.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSubs).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrSubscriptionNotFound, id)
		}
		var err error
		s, err = decodeSub(v)
		return err
	})
	return s, err
}

// Subscriptions returns the subscriptions of store (every store when
// store is ""), ordered by id (ids are time-ordered, so by creation).
func (d *DB) Subscriptions(store string) ([]Subscription, error) {
	var out []Subscription
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSubs).ForEach(func(_, v []byte) error {
			s, err := decodeSub(v)
			if err != nil {
				return err
			}
			if store == "" || s.Store == store {
				out = append(out, s)
			}
			return nil
		})
	})
	return out, err
}

// Retries returns the subscription's retry set in seq order: entries with
// seq > after, at most limit (0 = all).
func (d *DB) Retries(id string, after uint64, limit int) ([]RetryEntry, error) {
	var out []RetryEntry
	err := d.deliveryView(id, func(db *bolt.Bucket) error {
		c := db.Bucket(subRetry).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			e, err := decodeRetry(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// RetryCount is how many deliveries of subscription id wait in its retry
// set.
func (d *DB) RetryCount(id string) (int, error) {
	n := 0
	err := d.deliveryView(id, func(db *bolt.Bucket) error {
		if b := db.Bucket(subRetry); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// AttemptQuery selects attempts from a subscription's delivery log.
type AttemptQuery struct {
	// Outcome filters by outcome ("" = all). OutcomeDead reads the dead
	// set: the last attempt of every dead delivery, in seq order, with
	// After a seq; otherwise attempts come in id order, After an attempt
	// id.
	Outcome Outcome
	After   uint64
	Limit   int // default 100
	MaxScan int // records examined at most (default DefaultMaxScan)
}

// Attempts returns attempts and next: the value to pass as After to
// continue (0 when there is nothing more to read).
func (d *DB) Attempts(id string, q AttemptQuery) (out []Attempt, next uint64, err error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.MaxScan <= 0 {
		q.MaxScan = DefaultMaxScan
	}
	err = d.deliveryView(id, func(db *bolt.Bucket) error {
		dead := q.Outcome == OutcomeDead
		bucket := subAttempt
		if dead {
			bucket = subDead
		}
		c := db.Bucket(bucket).Cursor()
		scanned := 0
		for k, v := c.Seek(seqKey(q.After + 1)); k != nil; k, v = c.Next() {
			key := binary.BigEndian.Uint64(k)
			next = key
			a, err := decodeAttempt(v)
			if err != nil {
				return err
			}
			if !dead {
				a.ID = key
			} // the dead set keeps a copy whose log record may be pruned: ID 0
			if q.Outcome == "" || a.Outcome == q.Outcome {
				out = append(out, a)
				if len(out) >= q.Limit {
					break
				}
			}
			if scanned++; scanned >= q.MaxScan {
				break
			}
		}
		if k, _ := c.Next(); k == nil {
			next = 0
		}
		return nil
	})
	return out, next, err
}

// EventAttempts returns every kept attempt to deliver the event with seq,
// in the order they were made. A dead delivery whose attempts were pruned still has its
// last attempt.
func (d *DB) EventAttempts(id string, seq uint64) ([]Attempt, error) {
	var out []Attempt
	err := d.deliveryView(id, func(db *bolt.Bucket) error {
		ab := db.Bucket(subAttempt)
		c := db.Bucket(subByEvent).Cursor()
		prefix := seqKey(seq)
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Next() {
			aid := binary.BigEndian.Uint64(k[8:])
			a, err := decodeAttempt(ab.Get(seqKey(aid)))
			if err != nil {
				return err
			}
			a.ID = aid
			out = append(out, a)
		}
		if len(out) == 0 {
			if v := db.Bucket(subDead).Get(prefix); v != nil {
				a, err := decodeAttempt(v)
				if err != nil {
					return err
				}
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

func (d *DB) deliveryView(id string, fn func(*bolt.Bucket) error) error {
	return d.view(func(tx *bolt.Tx) error {
		db := tx.Bucket(deliveryBucketName(id))
		if db == nil {
			return fmt.Errorf("%w: %s", ErrSubscriptionNotFound, id)
		}
		return fn(db)
	})
}

// LastAttempt returns the newest attempt recorded for the subscription
// (ok false when none is).
func (d *DB) LastAttempt(id string) (a Attempt, ok bool, err error) {
	err = d.deliveryView(id, func(db *bolt.Bucket) error {
		k, v := db.Bucket(subAttempt).Cursor().Last()
		if k == nil {
			return nil
		}
		if a, err = decodeAttempt(v); err != nil {
			return err
		}
		a.ID, ok = binary.BigEndian.Uint64(k), true
		return nil
	})
	return a, ok, err
}

// Health is how delivery stands for a subscription in this copy of the
// log: the store's events after its cursor (LagEvents) and the time of
// the first of them, its retry set's size, and its newest attempt (nil
// before the first).
type Health struct {
	LagEvents       uint64
	OldestPendingAt time.Time
	RetryPending    int
	LastAttempt     *Attempt
}

// Health reports sub's delivery health. A store without events yet has
// no lag; a subscription deleted meanwhile has no retries or attempts.
func (d *DB) Health(sub *Subscription) (Health, error) {
	var h Health
	st, err := d.Store(sub.Store)
	switch {
	case errors.Is(err, ErrStoreNotFound):
	case err != nil:
		return h, err
	case st.LastSeq > sub.Cursor:
		h.LagEvents = st.LastSeq - sub.Cursor
		if ev, err := d.GetSeq(sub.Store, max(sub.Cursor+1, st.FirstSeq)); err == nil {
			h.OldestPendingAt = ev.Timestamp
		}
	}
	if h.RetryPending, err = d.RetryCount(sub.ID); err != nil && !errors.Is(err, ErrSubscriptionNotFound) {
		return h, err
	}
	a, ok, err := d.LastAttempt(sub.ID)
	if err != nil && !errors.Is(err, ErrSubscriptionNotFound) {
		return h, err
	}
	if ok {
		h.LastAttempt = &a
	}
	return h, nil
}
