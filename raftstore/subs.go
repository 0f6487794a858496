package raftstore

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	hlog "github.com/herald-io/herald/log"
)

// applySub proposes a subscription command and returns its result; a
// client-level error comes back as the returned error (nothing changed).
func (s *Store) applySub(cmd []byte) (SubResult, error) {
	if s.raft.State() != raft.Leader {
		return SubResult{}, ErrNotLeader
	}
	f := s.raft.Apply(cmd, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return SubResult{}, translate(err)
	}
	res, ok := f.Response().(SubResult)
	if !ok {
		if err, isErr := f.Response().(error); isErr {
			return SubResult{}, err
		}
		return SubResult{}, fmt.Errorf("%w: unexpected response %T", ErrBadCommand, f.Response())
	}
	return res, res.Err
}

// CreateSubscription stores a new subscription (complete, defaults
// applied); its cursor starts at the store's end or before fromSeq.
func (s *Store) CreateSubscription(sub *hlog.Subscription, fromSeq uint64) (hlog.Subscription, error) {
	res, err := s.applySub(encodeCreateSub(sub, fromSeq))
	return res.Sub, err
}

// PatchSubscription merges p into subscription id at time now.
func (s *Store) PatchSubscription(id string, p *hlog.SubPatch, now time.Time) (hlog.Subscription, error) {
	res, err := s.applySub(encodePatchSub(id, p, now.UnixNano()))
	return res.Sub, err
}

// RotateSecret makes key current; the old secret signs until graceUntil.
func (s *Store) RotateSecret(id, key string, graceUntil, now time.Time) (hlog.Subscription, error) {
	res, err := s.applySub(encodeRotate(id, key, graceUntil.UnixNano(), now.UnixNano()))
	return res.Sub, err
}

// DeleteSubscription removes a subscription and its delivery state.
func (s *Store) DeleteSubscription(id string) error {
	_, err := s.applySub(encodeDeleteSub(id))
	return err
}

// Redeliver queues the event with seq for delivery at now.
func (s *Store) Redeliver(id string, seq uint64, now time.Time) (hlog.RetryEntry, error) {
	res, err := s.applySub(encodeRedeliver(id, seq, now.UnixNano()))
	return res.Retry, err
}

// Replay moves the cursor back to fromSeq-1, or (onlyDead) requeues dead
// deliveries from fromSeq on.
func (s *Store) Replay(id string, fromSeq uint64, onlyDead bool, now time.Time) (uint64, error) {
	res, err := s.applySub(encodeReplay(id, fromSeq, onlyDead, now.UnixNano()))
	return res.N, err
}

// CommitDeliveries commits a batch of dispatcher results as one entry and
// waits until it is applied here.
func (s *Store) CommitDeliveries(b *hlog.DeliveryBatch) error {
	_, err := s.applySub(EncodeDeliveries(b))
	return err
}

// SetRetention sets a store's retention policy (zero clears it).
func (s *Store) SetRetention(store string, r hlog.Retention) error {
	_, err := s.applySub(encodeRetention(store, r))
	return err
}

// Compact removes store's events up to upTo (never ones a subscription
// still needs) and returns how many were removed.
func (s *Store) Compact(store string, upTo uint64) (uint64, error) {
	res, err := s.applySub(encodeCompact(store, upTo))
	return res.N, err
}
