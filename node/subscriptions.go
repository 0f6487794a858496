package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node/delivery"
	"github.com/herald-io/herald/raftstore"
)

// Subscription writes are leader-only Raft commands: a follower answers
// ErrNotLeader and the API forwards the request. Ids, secrets and times
// are decided here, before the command, so the FSM stays deterministic.

// leaderWrite fails fast on a follower.
func (n *Node) leaderWrite() error {
	if !n.raft.IsLeader() {
		return apiError(raftstore.ErrNotLeader)
	}
	return nil
}

// subIn loads a subscription and checks that it belongs to store.
func (n *Node) subIn(store, id string) (hlog.Subscription, error) {
	s, err := n.db.Subscription(id)
	if err != nil {
		return s, err
	}
	if s.Store != store {
		return hlog.Subscription{}, fmt.Errorf("%w: %s in store %s", hlog.ErrSubscriptionNotFound, id, store)
	}
	return s, nil
}

// Secret rotation limits.
const (
	DefaultGrace = 24 * time.Hour
	MaxGrace     = 7 * 24 * time.Hour
)

// CreateSubscription applies the defaults and the client's fields,
// assigns an id (sub_ + ULID), the timestamps and, when none was given, a
// secret, validates, and commits the subscription.
func (n *Node) CreateSubscription(ctx context.Context, req httpapi.CreateSubscriptionRequest) (hlog.Subscription, error) {
	if err := n.leaderWrite(); err != nil {
		return hlog.Subscription{}, err
	}
	if req.Patch.SensitiveHeaders != nil && req.Patch.Headers == nil {
		return hlog.Subscription{}, fmt.Errorf("%w: sensitive_headers goes with headers (send both)", hlog.ErrInvalidSubscription)
	}
	var from uint64
	if req.FromSeq != nil {
		if *req.FromSeq == 0 {
			return hlog.Subscription{}, fmt.Errorf("%w: from_seq must be 1 or more (leave it out to start at the store's end)", hlog.ErrInvalidSubscription)
		}
		from = *req.FromSeq
	}
	now := time.Now().UTC()
	s := hlog.Subscription{Store: req.Store}
	s.ApplyDefaults()
	req.Patch.Apply(&s) // an ordered subscription gets max_in_flight 1 unless the client set one
	s.ID = "sub_" + n.ids.ulid(now)
	s.CreatedAt, s.UpdatedAt = now.UnixNano(), now.UnixNano()
	secret := req.Secret
	if secret == "" {
		var err error
		if secret, err = delivery.NewSecret(); err != nil {
			return hlog.Subscription{}, err
		}
	}
	s.Secrets = []hlog.Secret{{Key: secret}}
	if len(s.SensitiveHeaders) > 0 {
		hs, err := n.sealHeaders(s.ID, nil, s.Headers, s.SensitiveHeaders)
		if err != nil {
			return hlog.Subscription{}, err
		}
		s.Headers = hs
	}
	if err := s.Validate(); err != nil {
		return hlog.Subscription{}, err
	}
	if err := n.checkDestination(ctx, s.URL); err != nil {
		return hlog.Subscription{}, err
	}
	// The quota: counted and committed under one lock, so two creates
	// cannot both take the last place.
	n.createMu.Lock()
	defer n.createMu.Unlock()
	if subs, err := n.db.Subscriptions(s.Store); err != nil {
		return hlog.Subscription{}, err
	} else if len(subs) >= n.cfg.MaxSubscriptionsPerStore {
		return hlog.Subscription{}, fmt.Errorf("%w: store %s has %d subscriptions, the most a store may have (herald serve --max-subscriptions-per-store)", httpapi.ErrConflict, s.Store, len(subs))
	}
	sealed, err := n.seal(s.ID, secrets.SecretField, secret)
	if err != nil {
		return hlog.Subscription{}, err
	}
	s.Secrets[0].Key = sealed // only ciphertext enters the Raft log
	out, err := n.raft.CreateSubscription(&s, from)
	if err == nil && len(out.Secrets) > 0 {
		out.Secrets[0].Key = secret // shown to the caller this once
	}
	return out, apiError(err)
}

// ListSubscriptions lists a store's subscriptions.
func (n *Node) ListSubscriptions(ctx context.Context, store string, c api.Consistency) ([]hlog.Subscription, error) {
	if err := hlog.ValidateStoreName(store); err != nil {
		return nil, err
	}
	if err := n.checkRead(ctx, c); err != nil {
		return nil, err
	}
	return n.db.Subscriptions(store)
}

// GetSubscription returns one subscription.
func (n *Node) GetSubscription(ctx context.Context, store, id string, c api.Consistency) (hlog.Subscription, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return hlog.Subscription{}, err
	}
	return n.subIn(store, id)
}

// UpdateSubscription commits a partial update.
func (n *Node) UpdateSubscription(ctx context.Context, store, id string, p hlog.SubPatch) (hlog.Subscription, error) {
	if err := n.leaderWrite(); err != nil {
		return hlog.Subscription{}, err
	}
	cur, err := n.subIn(store, id)
	if err != nil {
		return hlog.Subscription{}, err
	}
	if p.SensitiveHeaders != nil && p.Headers == nil {
		return hlog.Subscription{}, fmt.Errorf("%w: sensitive_headers goes with headers (send both)", hlog.ErrInvalidSubscription)
	}
	if p.Headers != nil && p.SensitiveHeaders == nil && len(cur.SensitiveHeaders) > 0 {
		// Headers alone (a GET's answer sent back): the sensitive ones
		// still named stay sensitive, and keep their value when sent "".
		// sensitive_headers: [] makes them plain.
		probe := hlog.Subscription{Headers: *p.Headers}
		var keep []string
		for _, name := range cur.SensitiveHeaders {
			if k, ok := probe.HeaderKey(name); ok {
				keep = append(keep, k)
			}
		}
		p.SensitiveHeaders = &keep
	}
	if p.Headers != nil && p.SensitiveHeaders != nil {
		hs, err := n.sealHeaders(id, &cur, *p.Headers, *p.SensitiveHeaders)
		if err != nil {
			return hlog.Subscription{}, err
		}
		p.Headers = &hs
	}
	if p.URL != nil {
		if err := n.checkDestination(ctx, *p.URL); err != nil {
			return hlog.Subscription{}, err
		}
	}
	// Checked before it is proposed, with the rules the FSM applies.
	next := cur
	p.Apply(&next)
	if err := next.Validate(); err != nil {
		return hlog.Subscription{}, err
	}
	out, err := n.raft.PatchSubscription(id, &p, time.Now().UTC())
	return out, apiError(err)
}

// DeleteSubscription deletes a subscription with its delivery state.
func (n *Node) DeleteSubscription(ctx context.Context, store, id string) error {
	if err := n.leaderWrite(); err != nil {
		return err
	}
	if _, err := n.subIn(store, id); err != nil {
		return err
	}
	return apiError(n.raft.DeleteSubscription(id))
}

// RotateSecret makes req.Secret (or a new one) current; the old one signs
// alongside for the grace period (default DefaultGrace, at most MaxGrace).
func (n *Node) RotateSecret(ctx context.Context, store, id string, req httpapi.RotateRequest) (hlog.Subscription, error) {
	if err := n.leaderWrite(); err != nil {
		return hlog.Subscription{}, err
	}
	grace := DefaultGrace
	if req.Grace != nil {
		grace = *req.Grace
	}
	if grace < 0 || grace > MaxGrace {
		return hlog.Subscription{}, fmt.Errorf("%w: grace must be between 0s and 168h", hlog.ErrInvalidSubscription)
	}
	secret := req.Secret
	if secret != "" {
		if err := hlog.ValidateSecret(secret); err != nil {
			return hlog.Subscription{}, err
		}
	}
	if _, err := n.subIn(store, id); err != nil {
		return hlog.Subscription{}, err
	}
	if secret == "" {
		var err error
		if secret, err = delivery.NewSecret(); err != nil {
			return hlog.Subscription{}, err
		}
	}
	now := time.Now().UTC()
	sealed, err := n.seal(id, secrets.SecretField, secret)
	if err != nil {
		return hlog.Subscription{}, err
	}
	out, err := n.raft.RotateSecret(id, sealed, now.Add(grace), now)
	if err == nil && len(out.Secrets) > 0 {
		out.Secrets[0].Key = secret // shown to the caller this once
	}
	return out, apiError(err)
}

// Redeliver queues one event for delivery now, whatever its outcome so
// far.
func (n *Node) Redeliver(ctx context.Context, store, id, eventID string) (hlog.RetryEntry, error) {
	if err := n.leaderWrite(); err != nil {
		return hlog.RetryEntry{}, err
	}
	if _, err := n.subIn(store, id); err != nil {
		return hlog.RetryEntry{}, err
	}
	ev, err := n.db.Get(store, eventID)
	if err != nil {
		return hlog.RetryEntry{}, err
	}
	out, err := n.raft.Redeliver(id, ev.Seq, time.Now().UTC())
	return out, apiError(err)
}

// Replay re-sends from a seq, or from the first event at or after a time.
func (n *Node) Replay(ctx context.Context, store, id string, req httpapi.ReplayRequest) (api.ReplayResult, error) {
	if err := n.leaderWrite(); err != nil {
		return api.ReplayResult{}, err
	}
	if _, err := n.subIn(store, id); err != nil {
		return api.ReplayResult{}, err
	}
	from := req.FromSeq
	if from == 0 {
		seq, err := n.firstSeqSince(store, req.Since)
		if err != nil {
			return api.ReplayResult{}, err
		}
		from = seq
	}
	queued, err := n.raft.Replay(id, from, req.OnlyDead, time.Now().UTC())
	return api.ReplayResult{FromSeq: from, Queued: queued}, apiError(err)
}

// firstSeqSince finds the first event with a timestamp at or after since
// (timestamps are assigned by the accepting node, so they are nearly but
// not strictly ordered; the scan takes the first in seq order). When none
// is, it returns the seq after the end: nothing to replay.
func (n *Node) firstSeqSince(store string, since time.Time) (uint64, error) {
	after := uint64(0)
	for {
		evs, next, err := n.db.Read(store, hlog.ReadOptions{After: after, Limit: 1000})
		var ce *hlog.CompactedError
		if errors.As(err, &ce) && ce.FirstSeq-1 > after {
			after = ce.FirstSeq - 1 // retention removed the older events: start at the first one kept
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, e := range evs {
			if !e.Timestamp.Before(since) {
				return e.Seq, nil
			}
		}
		if len(evs) == 0 || next <= after {
			return next + 1, nil
		}
		after = next
	}
}

// TestSubscription sends a herald.test event (not stored) from the leader
// (so a subscription just created is found) and returns the attempt.
func (n *Node) TestSubscription(ctx context.Context, store, id string) (hlog.Attempt, error) {
	if err := n.leaderWrite(); err != nil {
		return hlog.Attempt{}, err
	}
	s, err := n.subIn(store, id)
	if err != nil {
		return hlog.Attempt{}, err
	}
	now := time.Now().UTC()
	if wait, ok := n.tests.allow(s.ID, now); !ok {
		return hlog.Attempt{}, &httpapi.RateLimitedError{
			Msg:   fmt.Sprintf("at most %d test events at once and one every %s per subscription", testBurst, testEvery),
			Retry: wait,
		}
	}
	keys, err := delivery.Keys(&s, now, n.openSealed)
	if err != nil {
		return hlog.Attempt{}, err
	}
	err = delivery.OpenHeaders(&s, n.openSealed)
	if err != nil {
		return hlog.Attempt{}, err
	}
	ev := hlog.Event{ID: n.ids.next(now), Store: store, Type: "herald.test", Timestamp: now, Version: "1",
		Data: []byte(`{"message":"test event from Herald","subscription_id":"` + s.ID + `"}`)}
	body := ev.AppendEnvelope(nil)
	a, _, err := n.sender.Send(ctx, &s, keys, &ev, body, 1)
	if err != nil {
		return hlog.Attempt{}, fmt.Errorf("%w: %v", httpapi.ErrUnavailable, err)
	}
	delivery.ExpandRequestHeaders(&a, store, s.ID)
	a.Outcome = hlog.OutcomeFailed
	if a.Error == "" && delivery.Success(a.Status) {
		a.Outcome = hlog.OutcomeSucceeded
	}
	return a, nil
}

// Deliveries reads the delivery log.
func (n *Node) Deliveries(ctx context.Context, store, id string, q httpapi.DeliveriesQuery) (httpapi.DeliveriesPage, error) {
	if err := n.checkRead(ctx, q.Consistency); err != nil {
		return httpapi.DeliveriesPage{}, err
	}
	if _, err := n.subIn(store, id); err != nil {
		return httpapi.DeliveriesPage{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if q.Status == api.DeliveryPending {
		// One more than asked tells whether there is a next page.
		es, err := n.db.Retries(id, q.After, limit+1)
		if err != nil {
			return httpapi.DeliveriesPage{}, err
		}
		page := httpapi.DeliveriesPage{Pending: es}
		if len(es) > limit {
			page.Pending = es[:limit]
			page.Next = es[limit-1].Seq
		}
		return page, nil
	}
	as, next, err := n.db.Attempts(id, hlog.AttemptQuery{Outcome: hlog.Outcome(q.Status), After: q.After, Limit: limit})
	for i := range as {
		delivery.ExpandRequestHeaders(&as[i], store, id)
	}
	return httpapi.DeliveriesPage{Attempts: as, Next: next}, err
}

// EventDeliveries returns every kept attempt for one event.
func (n *Node) EventDeliveries(ctx context.Context, store, id, eventID string, c api.Consistency) ([]hlog.Attempt, error) {
	if err := n.checkRead(ctx, c); err != nil {
		return nil, err
	}
	if _, err := n.subIn(store, id); err != nil {
		return nil, err
	}
	ev, err := n.db.Get(store, eventID)
	if err != nil {
		return nil, err
	}
	as, err := n.db.EventAttempts(id, ev.Seq)
	for i := range as {
		delivery.ExpandRequestHeaders(&as[i], store, id)
	}
	return as, err
}

// deliveryLoop runs the dispatcher while this node leads: after a barrier
// (so the local log holds every committed entry), until leadership is
// lost or the node stops. A dispatcher that stops on its own (a commit
// failed) is restarted after a pause if this node still leads.
func (n *Node) deliveryLoop() {
	defer n.wg.Done()
	defer close(n.deliveryDone)
	for {
		select {
		case <-n.deliveryStop:
			return
		default:
		}
		n.leaderMu.Lock()
		isLeader, ch := n.isLeader, n.leaderChange
		n.leaderMu.Unlock()
		if !isLeader {
			select {
			case <-ch:
				continue
			case <-n.deliveryStop:
				return
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-ch:
			case <-n.deliveryStop:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := n.raft.Barrier(10 * time.Second)
		if err == nil {
			err = n.dispatcher.Run(ctx)
		}
		stopped := ctx.Err() != nil
		cancel()
		if stopped || errors.Is(err, delivery.ErrStopped) {
			continue // leadership changed or the node stops: re-check
		}
		n.log.Warn("dispatcher stopped; restarting if still leader", "error", err)
		select {
		case <-time.After(time.Second):
		case <-n.deliveryStop:
			return
		}
	}
}

// stopDelivery stops the dispatcher and waits, so the results of finished
// attempts are committed while this node can still commit.
func (n *Node) stopDelivery() {
	n.deliveryStopOnce.Do(func() { close(n.deliveryStop) })
	if n.deliveryStarted {
		<-n.deliveryDone
	}
}

// SubscriptionHealth reports how delivery is going for sub, from this
// node's copy of the log.
func (n *Node) SubscriptionHealth(sub *hlog.Subscription) (hlog.Health, error) {
	return n.db.Health(sub)
}
