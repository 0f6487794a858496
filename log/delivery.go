package log

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/herald-io/herald/internal/wire"
	bolt "go.etcd.io/bbolt"
)

// Subscription storage:
//
//	subs              id -> Subscription (JSON)
//	d/<id>/a          attempt id (8 bytes BE) -> attempt record
//	d/<id>/x          seq (8) + attempt id (8) -> nil: attempts of one event
//	d/<id>/r          seq (8) -> retry entry: the retry set
//	d/<id>/z          seq (8) -> attempt record: last attempt of a dead delivery
var (
	bucketSubs = []byte("subs")
	subAttempt = []byte("a")
	subByEvent = []byte("x")
	subRetry   = []byte("r")
	subDead    = []byte("z")
)

func deliveryBucketName(id string) []byte { return []byte("d/" + id) }

// CreateSubscription stores a new subscription. Its cursor starts at the
// store's current end, or just before fromSeq when fromSeq > 0 (a replay
// from the log). The subscription must be complete and valid (defaults
// applied); its id must be new.
func (t *Tx) CreateSubscription(s Subscription, fromSeq uint64) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.ID == "" {
		return fmt.Errorf("%w: missing id", ErrInvalidSubscription)
	}
	b := t.tx.Bucket(bucketSubs)
	if b.Get([]byte(s.ID)) != nil {
		return fmt.Errorf("%w: %s", ErrSubscriptionExists, s.ID)
	}
	if first, err := firstSeq(t.tx, s.Store); err != nil {
		return err
	} else if fromSeq > 0 && fromSeq < first {
		fromSeq = first // the events before it were removed by retention
	}
	if fromSeq > 0 {
		s.Cursor = fromSeq - 1
	} else {
		s.Cursor = t.lastSeq(s.Store)
	}
	s.Gen, s.Epoch = 1, 1
	s.NextAttempt, s.OldestAttempt = 1, 1
	s.FailingSince, s.Failures, s.BreakerOpen = 0, 0, false
	db, err := t.tx.CreateBucket(deliveryBucketName(s.ID))
	if err != nil {
		return err
	}
	for _, name := range [][]byte{subAttempt, subByEvent, subRetry, subDead} {
		if _, err := db.CreateBucket(name); err != nil {
			return err
		}
	}
	t.subsChanged = true
	return b.Put([]byte(s.ID), encodeSub(&s))
}

func (t *Tx) lastSeq(store string) uint64 {
	sb := t.tx.Bucket(bucketStores)
	if v := sb.Get([]byte(store)); v != nil {
		if m, err := decodeStoreMeta(store, v); err == nil {
			return m.lastSeq
		}
	}
	return 0
}

// Subscription returns a subscription as this transaction sees it.
func (t *Tx) Subscription(id string) (Subscription, error) { return t.getSub(id) }

// getSub loads a subscription for change.
func (t *Tx) getSub(id string) (Subscription, error) {
	v := t.tx.Bucket(bucketSubs).Get([]byte(id))
	if v == nil {
		return Subscription{}, fmt.Errorf("%w: %s", ErrSubscriptionNotFound, id)
	}
	return decodeSub(v)
}

func (t *Tx) putSub(s *Subscription) error {
	return t.tx.Bucket(bucketSubs).Put([]byte(s.ID), encodeSub(s))
}

// apiChange stores s after an API command: Gen and UpdatedAt move.
func (t *Tx) apiChange(s *Subscription, now int64) error {
	s.Gen++
	s.UpdatedAt = now
	t.subsChanged = true
	return t.putSub(s)
}

// PatchSubscription merges p into subscription id and returns the result.
// An invalid result changes nothing. Enabling a paused or disabled
// subscription makes every delivery waiting in its retry set due at now
// (the command's time): entries due later are moved to now, earlier ones
// keep their time.
func (t *Tx) PatchSubscription(id string, p SubPatch, now int64) (Subscription, error) {
	s, err := t.getSub(id)
	if err != nil {
		return s, err
	}
	was := s.Status
	p.Apply(&s)
	if err := s.Validate(); err != nil {
		return Subscription{}, err
	}
	if was != SubActive && s.Status == SubActive {
		if err := t.retriesDueAt(id, now); err != nil {
			return Subscription{}, err
		}
	}
	return s, t.apiChange(&s, now)
}

// retriesDueAt moves every entry of a subscription's retry set that is due
// after now to now.
func (t *Tx) retriesDueAt(id string, now int64) error {
	rb := t.deliveryBucket(id).Bucket(subRetry)
	type due struct {
		key []byte
		val []byte
	}
	var moved []due
	err := rb.ForEach(func(k, v []byte) error {
		e, err := decodeRetry(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		if e.NextAt > now {
			e.NextAt = now
			moved = append(moved, due{append([]byte(nil), k...), encodeRetry(&e)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range moved { // not during ForEach: bbolt forbids changing a bucket it iterates
		if err := rb.Put(m.key, m.val); err != nil {
			return err
		}
	}
	return nil
}

// RotateSecret makes key the subscription's current secret. The previous
// current secret keeps signing until graceUntil (unix ns; dropped at once
// when graceUntil <= now); expired secrets are dropped.
func (t *Tx) RotateSecret(id, key string, graceUntil, now int64) (Subscription, error) {
	s, err := t.getSub(id)
	if err != nil {
		return s, err
	}
	if err := ValidateStoredSecret(key); err != nil {
		return Subscription{}, err
	}
	secrets := []Secret{{Key: key}}
	for _, sec := range s.Secrets {
		if sec.ExpiresAt == 0 {
			sec.ExpiresAt = graceUntil
		}
		if sec.ExpiresAt > now && len(secrets) < MaxSecrets {
			secrets = append(secrets, sec)
		}
	}
	s.Secrets = secrets
	return s, t.apiChange(&s, now)
}

// DeleteSubscription removes a subscription with its retry set and
// delivery log.
func (t *Tx) DeleteSubscription(id string) error {
	b := t.tx.Bucket(bucketSubs)
	if b.Get([]byte(id)) == nil {
		return fmt.Errorf("%w: %s", ErrSubscriptionNotFound, id)
	}
	if err := t.tx.DeleteBucket(deliveryBucketName(id)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return err
	}
	t.subsChanged = true
	return b.Delete([]byte(id))
}

// Redeliver puts the event with seq into the subscription's retry set, due
// at now, with its attempt count restarted: the event is sent again
// whatever its earlier outcome.
func (t *Tx) Redeliver(id string, seq uint64, now int64) (RetryEntry, error) {
	s, err := t.getSub(id)
	if err != nil {
		return RetryEntry{}, err
	}
	ev, err := t.eventBySeq(s.Store, seq)
	if err != nil {
		return RetryEntry{}, err
	}
	e := RetryEntry{Seq: seq, EventID: ev.ID, NextAt: now, Manual: true}
	if err := t.deliveryBucket(id).Bucket(subRetry).Put(seqKey(seq), encodeRetry(&e)); err != nil {
		return RetryEntry{}, err
	}
	return e, t.apiChange(&s, now)
}

// Replay re-sends events from the log. Without onlyDead the cursor moves
// back to just before fromSeq, so every matching event from there on is
// delivered again (entries already in the retry set stay there). With
// onlyDead the dead deliveries with seq >= fromSeq go into the retry set,
// due at now. It returns how many dead deliveries were queued (onlyDead)
// or how far the cursor moved back.
func (t *Tx) Replay(id string, fromSeq uint64, onlyDead bool, now int64) (uint64, error) {
	s, err := t.getSub(id)
	if err != nil {
		return 0, err
	}
	if fromSeq == 0 {
		fromSeq = 1
	}
	if first, err := firstSeq(t.tx, s.Store); err != nil {
		return 0, err
	} else if fromSeq < first {
		fromSeq = first // the events before it were removed by retention
	}
	var n uint64
	if onlyDead {
		db := t.deliveryBucket(id)
		rb, zb := db.Bucket(subRetry), db.Bucket(subDead)
		c := zb.Cursor()
		for k, v := c.Seek(seqKey(fromSeq)); k != nil; k, v = c.Next() {
			a, err := decodeAttempt(v)
			if err != nil {
				return 0, err
			}
			e := RetryEntry{Seq: a.Seq, EventID: a.EventID, NextAt: now, Manual: true}
			if err := rb.Put(seqKey(a.Seq), encodeRetry(&e)); err != nil {
				return 0, err
			}
			n++
		}
	} else if fromSeq-1 < s.Cursor {
		n = s.Cursor - (fromSeq - 1)
		s.Cursor = fromSeq - 1
		s.Epoch++
	}
	return n, t.apiChange(&s, now)
}

func (t *Tx) deliveryBucket(id string) *bolt.Bucket {
	return t.tx.Bucket(deliveryBucketName(id))
}

func (t *Tx) eventBySeq(store string, seq uint64) (Event, error) {
	sb := t.tx.Bucket(storeBucketName(store))
	if sb == nil {
		return Event{}, fmt.Errorf("%w: %s", ErrStoreNotFound, store)
	}
	eb := sb.Bucket(subEvents)
	if eb.Get(seqKey(seq)) == nil {
		return Event{}, fmt.Errorf("%w: seq %d in %s", ErrEventNotFound, seq, store)
	}
	return getBySeq(eb, store, seq)
}

// ApplyDeliveries records a batch of dispatcher results: every attempt goes
// into the delivery log; a failed attempt (re)enters the retry set, a
// succeeded or dead one leaves it; dead deliveries keep their last attempt.
// Cursor and failure state move only when the batch's Epoch is current,
// and Disable applies to an active subscription whatever the Epoch. Results of a
// deleted subscription are dropped. The delivery log is then pruned to
// the last b.Keep attempts.
func (t *Tx) ApplyDeliveries(b DeliveryBatch) error {
	// Check the operational events first, so an invalid batch changes
	// nothing.
	if len(b.Events) > 0 {
		if err := validateAppend(HeraldStore, b.Events, (*NewEvent).validateFields); err != nil {
			return err
		}
	}
	for i := range b.Subs {
		sd := &b.Subs[i]
		s, err := t.getSub(sd.ID)
		if errors.Is(err, ErrSubscriptionNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		db := t.deliveryBucket(sd.ID)
		ab, xb, rb, zb := db.Bucket(subAttempt), db.Bucket(subByEvent), db.Bucket(subRetry), db.Bucket(subDead)
		ab.FillPercent = appendFillPercent
		for j := range sd.Attempts {
			a := &sd.Attempts[j]
			a.ID = s.NextAttempt
			s.NextAttempt++
			// bbolt keeps the value slice until commit: one buffer each.
			buf := encodeAttempt(make([]byte, 0, 256+len(a.ResponseBody)), a)
			if err := ab.Put(seqKey(a.ID), buf); err != nil {
				return err
			}
			if err := xb.Put(eventAttemptKey(a.Seq, a.ID), nil); err != nil {
				return err
			}
			if queuedAfter(rb, a) {
				// A redelivery was asked for after this attempt started:
				// keep it queued.
				if a.Outcome == OutcomeDead {
					err = zb.Put(seqKey(a.Seq), buf)
				}
			} else {
				switch a.Outcome {
				case OutcomeFailed:
					e := RetryEntry{Seq: a.Seq, EventID: a.EventID, Attempts: a.Attempt, NextAt: a.NextAt, LastError: attemptError(a), Manual: a.Manual}
					err = rb.Put(seqKey(a.Seq), encodeRetry(&e))
				case OutcomeDead:
					if err = rb.Delete(seqKey(a.Seq)); err == nil {
						err = zb.Put(seqKey(a.Seq), buf)
					}
				default:
					if err = rb.Delete(seqKey(a.Seq)); err == nil {
						err = zb.Delete(seqKey(a.Seq))
					}
				}
			}
			if err != nil {
				return err
			}
		}
		if err := prune(&s, ab, xb, b.Keep); err != nil {
			return err
		}
		if sd.Epoch == s.Epoch {
			if sd.Cursor > s.Cursor {
				s.Cursor = sd.Cursor
			}
			if sd.State != nil {
				s.FailingSince, s.Failures, s.BreakerOpen = sd.State.FailingSince, sd.State.Failures, sd.State.BreakerOpen
			}
		}
		if sd.Disable != "" && s.Status == SubActive {
			s.Status, s.DisabledReason = SubDisabled, sd.Disable
			s.UpdatedAt = b.Now
			s.Gen++
			t.subsChanged = true
		}
		if err := t.putSub(&s); err != nil {
			return err
		}
	}
	if len(b.Events) > 0 {
		if _, err := t.Append(HeraldStore, b.Events); err != nil {
			return err
		}
	}
	return nil
}

// queuedAfter reports whether the retry set holds a redelivery of a's
// event that was asked for after a started: a's outcome must not clear it.
func queuedAfter(rb *bolt.Bucket, a *Attempt) bool {
	v := rb.Get(seqKey(a.Seq))
	if v == nil {
		return false
	}
	e, err := decodeRetry(a.Seq, v)
	return err == nil && e.Manual && e.Attempts == 0 && a.At < e.NextAt
}

func attemptError(a *Attempt) string {
	if a.Error != "" {
		return a.Error
	}
	if a.Status != 0 {
		return fmt.Sprintf("HTTP %d", a.Status)
	}
	return ""
}

// prune deletes the oldest attempts beyond keep. Attempt ids are dense, so
// this is deterministic: every replica deletes the same records.
func prune(s *Subscription, ab, xb *bolt.Bucket, keep int) error {
	if keep <= 0 {
		keep = DefaultKeepAttempts
	}
	for s.NextAttempt-s.OldestAttempt > uint64(keep) {
		id := s.OldestAttempt
		if v := ab.Get(seqKey(id)); v != nil {
			a, err := decodeAttempt(v)
			if err != nil {
				return err
			}
			if err := xb.Delete(eventAttemptKey(a.Seq, id)); err != nil {
				return err
			}
			if err := ab.Delete(seqKey(id)); err != nil {
				return err
			}
		}
		s.OldestAttempt++
	}
	return nil
}

func eventAttemptKey(seq, id uint64) []byte {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:8], seq)
	binary.BigEndian.PutUint64(k[8:], id)
	return k[:]
}

// encodeAttempt appends a's record (everything but ID, which is the key).
func encodeAttempt(b []byte, a *Attempt) []byte {
	b = append(b, 1) // record version
	b = wire.AppendString(b, a.EventID)
	b = wire.AppendUvarint(b, a.Seq)
	b = wire.AppendUvarint(b, uint64(a.Attempt))
	b = wire.AppendUint64(b, uint64(a.At))
	b = wire.AppendUvarint(b, uint64(a.Duration))
	flags := byte(0)
	if a.Manual {
		flags = 1
	}
	b = append(b, flags)
	b = appendPairs(b, a.RequestHeaders)
	b = wire.AppendUvarint(b, uint64(a.Status))
	b = appendPairs(b, a.ResponseHeaders)
	b = wire.AppendString(b, a.ResponseBody)
	b = wire.AppendString(b, a.Error)
	b = wire.AppendString(b, string(a.Outcome))
	return wire.AppendUint64(b, uint64(a.NextAt))
}

func appendPairs(b []byte, ps [][2]string) []byte {
	b = wire.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = wire.AppendString(b, p[0])
		b = wire.AppendString(b, p[1])
	}
	return b
}

func readPairs(r *wire.Reader) [][2]string {
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		r.Bytes() // force a short-input error
		return nil
	}
	if n == 0 {
		return nil
	}
	ps := make([][2]string, n)
	for i := range ps {
		ps[i] = [2]string{r.String(), r.String()}
	}
	return ps
}

func decodeAttempt(v []byte) (Attempt, error) {
	if len(v) == 0 || v[0] != 1 {
		return Attempt{}, fmt.Errorf("%w: attempt record version", ErrCorrupt)
	}
	r := wire.NewReader(v[1:])
	a := readAttempt(r)
	if r.Err() != nil {
		return Attempt{}, fmt.Errorf("%w: attempt: %v", ErrCorrupt, r.Err())
	}
	return a, nil
}

func readAttempt(r *wire.Reader) Attempt {
	var a Attempt
	a.EventID = r.String()
	a.Seq = r.Uvarint()
	a.Attempt = int(r.Uvarint())
	a.At = int64(r.Uint64())
	a.Duration = int64(r.Uvarint())
	a.Manual = r.Byte() == 1
	a.RequestHeaders = readPairs(r)
	a.Status = int(r.Uvarint())
	a.ResponseHeaders = readPairs(r)
	a.ResponseBody = r.String()
	a.Error = r.String()
	a.Outcome = Outcome(r.String())
	a.NextAt = int64(r.Uint64())
	return a
}

// EncodeAttempt appends a's wire form (its record; ID is not included) to
// b, for Raft commands.
func EncodeAttempt(b []byte, a *Attempt) []byte { return encodeAttempt(b, a) }

// DecodeAttempt decodes what EncodeAttempt wrote.
func DecodeAttempt(v []byte) (Attempt, error) { return decodeAttempt(v) }

func encodeRetry(e *RetryEntry) []byte {
	b := make([]byte, 0, 32+len(e.EventID)+len(e.LastError))
	b = append(b, 1)
	b = wire.AppendString(b, e.EventID)
	b = wire.AppendUvarint(b, uint64(e.Attempts))
	b = wire.AppendUint64(b, uint64(e.NextAt))
	b = wire.AppendString(b, e.LastError)
	flags := byte(0)
	if e.Manual {
		flags = 1
	}
	return append(b, flags)
}

func decodeRetry(seq uint64, v []byte) (RetryEntry, error) {
	if len(v) == 0 || v[0] != 1 {
		return RetryEntry{}, fmt.Errorf("%w: retry record version", ErrCorrupt)
	}
	r := wire.NewReader(v[1:])
	e := RetryEntry{Seq: seq, EventID: r.String(), Attempts: int(r.Uvarint()), NextAt: int64(r.Uint64()), LastError: r.String()}
	e.Manual = r.Byte() == 1
	if r.Err() != nil {
		return RetryEntry{}, fmt.Errorf("%w: retry entry: %v", ErrCorrupt, r.Err())
	}
	return e, nil
}
