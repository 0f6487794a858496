package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

// Subscription and delivery commands.
const (
	cmdCreateSub  cmdType = 4  // create a subscription
	cmdPatchSub   cmdType = 5  // partial update (also pause/enable)
	cmdRotate     cmdType = 6  // rotate the signing secret
	cmdDeleteSub  cmdType = 7  // delete a subscription
	cmdRedeliver  cmdType = 8  // queue one event for delivery
	cmdReplay     cmdType = 9  // move the cursor back, or requeue dead deliveries
	cmdDeliveries cmdType = 10 // a batch of dispatcher results
	cmdRetention  cmdType = 11 // set a store's retention policy
	cmdCompact    cmdType = 12 // remove a store's events up to a seq
)

// SubResult is the outcome of a subscription command. Err is a client-level
// error (hlog.ErrInvalidSubscription, hlog.ErrSubscriptionNotFound,
// hlog.ErrSubscriptionExists, hlog.ErrEventNotFound, hlog.ErrStoreNotFound,
// hlog.ErrInvalidEvent): nothing was changed.
type SubResult struct {
	Sub   hlog.Subscription
	Retry hlog.RetryEntry
	N     uint64
	Err   error
}

// clientError reports whether err is a verdict on the command's input
// (returned as a result) rather than a storage failure (fatal).
func clientError(err error) bool {
	for _, e := range []error{hlog.ErrInvalidSubscription, hlog.ErrSubscriptionNotFound,
		hlog.ErrSubscriptionExists, hlog.ErrEventNotFound, hlog.ErrStoreNotFound,
		hlog.ErrInvalidEvent, hlog.ErrInvalidStore, hlog.ErrInvalidPattern, hlog.ErrInvalidRetention, hlog.ErrReservedStore,
		hlog.ErrInvalidKey, hlog.ErrKeyNotFound, hlog.ErrKeyExists, hlog.ErrInvalidJoinToken, hlog.ErrInvalidNode,
		hlog.ErrInvalidDataKey, hlog.ErrResealConflict} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func header(t cmdType) []byte { return []byte{cmdVersion1, byte(t)} }

func encodeCreateSub(s *hlog.Subscription, fromSeq uint64) []byte {
	js, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain data
	}
	b := wire.AppendBytes(header(cmdCreateSub), js)
	return wire.AppendUvarint(b, fromSeq)
}

func encodePatchSub(id string, p *hlog.SubPatch, now int64) []byte {
	js, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	b := wire.AppendString(header(cmdPatchSub), id)
	b = wire.AppendBytes(b, js)
	return wire.AppendUint64(b, uint64(now))
}

func encodeRotate(id, key string, graceUntil, now int64) []byte {
	b := wire.AppendString(header(cmdRotate), id)
	b = wire.AppendString(b, key)
	b = wire.AppendUint64(b, uint64(graceUntil))
	return wire.AppendUint64(b, uint64(now))
}

func encodeDeleteSub(id string) []byte { return wire.AppendString(header(cmdDeleteSub), id) }

func encodeRedeliver(id string, seq uint64, now int64) []byte {
	b := wire.AppendString(header(cmdRedeliver), id)
	b = wire.AppendUvarint(b, seq)
	return wire.AppendUint64(b, uint64(now))
}

func encodeReplay(id string, fromSeq uint64, onlyDead bool, now int64) []byte {
	b := wire.AppendString(header(cmdReplay), id)
	b = wire.AppendUvarint(b, fromSeq)
	flag := byte(0)
	if onlyDead {
		flag = 1
	}
	b = append(b, flag)
	return wire.AppendUint64(b, uint64(now))
}

// EncodeDeliveries encodes a dispatcher result batch as one Raft entry.
func EncodeDeliveries(d *hlog.DeliveryBatch) []byte {
	b := make([]byte, 0, 64+len(d.Subs)*64)
	b = append(b, header(cmdDeliveries)...)
	b = wire.AppendUint64(b, uint64(d.Now))
	b = wire.AppendUvarint(b, uint64(d.Keep))
	b = wire.AppendUvarint(b, uint64(len(d.Subs)))
	var ab []byte
	for i := range d.Subs {
		s := &d.Subs[i]
		b = wire.AppendString(b, s.ID)
		b = wire.AppendUvarint(b, s.Epoch)
		b = wire.AppendUvarint(b, s.Cursor)
		b = wire.AppendUvarint(b, uint64(len(s.Attempts)))
		for j := range s.Attempts {
			ab = hlog.EncodeAttempt(ab[:0], &s.Attempts[j])
			b = wire.AppendBytes(b, ab)
		}
		if s.State != nil {
			b = append(b, 1)
			b = wire.AppendUint64(b, uint64(s.State.FailingSince))
			b = wire.AppendUvarint(b, uint64(s.State.Failures))
			br := byte(0)
			if s.State.BreakerOpen {
				br = 1
			}
			b = append(b, br)
		} else {
			b = append(b, 0)
		}
		b = wire.AppendString(b, s.Disable)
	}
	b = wire.AppendUvarint(b, uint64(len(d.Events)))
	for i := range d.Events {
		b = appendNewEvent(b, &d.Events[i])
	}
	return b
}

func decodeDeliveries(r *wire.Reader) (hlog.DeliveryBatch, error) {
	var d hlog.DeliveryBatch
	d.Now = int64(r.Uint64())
	d.Keep = int(r.Uvarint())
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		return d, fmt.Errorf("%w: deliveries: %d subscriptions in %d bytes", ErrBadCommand, n, r.Len())
	}
	d.Subs = make([]hlog.SubDelivery, n)
	for i := range d.Subs {
		s := &d.Subs[i]
		s.ID = r.String()
		s.Epoch = r.Uvarint()
		s.Cursor = r.Uvarint()
		m := r.Uvarint()
		if m > uint64(r.Len()) {
			return d, fmt.Errorf("%w: deliveries: %d attempts in %d bytes", ErrBadCommand, m, r.Len())
		}
		s.Attempts = make([]hlog.Attempt, m)
		for j := range s.Attempts {
			a, err := hlog.DecodeAttempt(r.Bytes())
			if err != nil && r.Err() == nil {
				return d, fmt.Errorf("%w: deliveries: %v", ErrBadCommand, err)
			}
			s.Attempts[j] = a
		}
		if r.Byte() == 1 {
			s.State = &hlog.DeliveryState{FailingSince: int64(r.Uint64()), Failures: int(r.Uvarint()), BreakerOpen: r.Byte() == 1}
		}
		s.Disable = r.String()
		if r.Err() != nil {
			break
		}
	}
	m := r.Uvarint()
	if m > uint64(r.Len()) {
		return d, fmt.Errorf("%w: deliveries: %d events in %d bytes", ErrBadCommand, m, r.Len())
	}
	for j := uint64(0); j < m && r.Err() == nil; j++ {
		d.Events = append(d.Events, readNewEvent(r))
	}
	if r.Err() != nil {
		return d, fmt.Errorf("%w: deliveries: %v", ErrBadCommand, r.Err())
	}
	return d, nil
}

func encodeRetention(store string, r hlog.Retention) []byte {
	b := wire.AppendString(header(cmdRetention), store)
	b = wire.AppendUint64(b, uint64(r.MaxAge))
	return wire.AppendUint64(b, r.MaxEvents)
}

func encodeCompact(store string, upTo uint64) []byte {
	return wire.AppendUvarint(wire.AppendString(header(cmdCompact), store), upTo)
}

// applySubCommand applies the subscription commands. Client-level errors
// become the result; anything else is fatal.
func applySubCommand(tx *hlog.Tx, t cmdType, r *wire.Reader) (interface{}, error) {
	var res SubResult
	var err error
	switch t {
	case cmdCreateSub:
		var s hlog.Subscription
		js := r.Bytes()
		from := r.Uvarint()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: create subscription: %v", ErrBadCommand, r.Err())
		}
		if jerr := json.Unmarshal(js, &s); jerr != nil {
			return nil, fmt.Errorf("%w: create subscription: %v", ErrBadCommand, jerr)
		}
		if err = tx.CreateSubscription(s, from); err == nil {
			res.Sub, err = tx.Subscription(s.ID)
		}
	case cmdPatchSub:
		id := r.String()
		js := r.Bytes()
		now := int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: patch subscription: %v", ErrBadCommand, r.Err())
		}
		var p hlog.SubPatch
		if jerr := json.Unmarshal(js, &p); jerr != nil {
			return nil, fmt.Errorf("%w: patch subscription: %v", ErrBadCommand, jerr)
		}
		res.Sub, err = tx.PatchSubscription(id, p, now)
	case cmdRotate:
		id, key := r.String(), r.String()
		grace, now := int64(r.Uint64()), int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: rotate: %v", ErrBadCommand, r.Err())
		}
		res.Sub, err = tx.RotateSecret(id, key, grace, now)
	case cmdDeleteSub:
		id := r.String()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: delete subscription: %v", ErrBadCommand, r.Err())
		}
		err = tx.DeleteSubscription(id)
	case cmdRedeliver:
		id, seq, now := r.String(), r.Uvarint(), int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: redeliver: %v", ErrBadCommand, r.Err())
		}
		res.Retry, err = tx.Redeliver(id, seq, now)
	case cmdReplay:
		id, from := r.String(), r.Uvarint()
		onlyDead := r.Byte() == 1
		now := int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: replay: %v", ErrBadCommand, r.Err())
		}
		res.N, err = tx.Replay(id, from, onlyDead, now)
	case cmdDeliveries:
		d, derr := decodeDeliveries(r)
		if derr != nil {
			return nil, derr
		}
		err = tx.ApplyDeliveries(d)
	case cmdRetention:
		store := r.String()
		ret := hlog.Retention{MaxAge: time.Duration(r.Uint64()), MaxEvents: r.Uint64()}
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: retention: %v", ErrBadCommand, r.Err())
		}
		err = tx.SetRetention(store, ret)
	case cmdCompact:
		store, upTo := r.String(), r.Uvarint()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: compact: %v", ErrBadCommand, r.Err())
		}
		res.N, err = tx.Compact(store, upTo)
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrBadCommand, t)
	}
	if err != nil {
		if !clientError(err) {
			return nil, err
		}
		res.Err = err
	}
	return res, nil
}
