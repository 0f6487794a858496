package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

func subPath(store, id string) string {
	p := storePath(store) + "/subscriptions"
	if id != "" {
		p += "/" + seg(id)
	}
	return p
}

// CreateSubscription registers a webhook endpoint on a store. The answer
// holds the signing secret, the only time it is shown.
func (c *Client) CreateSubscription(ctx context.Context, store string, s SubscriptionCreate) (*Subscription, error) {
	body, err := marshal(s)
	if err != nil {
		return nil, err
	}
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodPost, path: subPath(store, ""), body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Subscriptions lists a store's subscriptions.
func (c *Client) Subscriptions(ctx context.Context, store string, q *QueryOptions) ([]Subscription, error) {
	var out SubscriptionList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: subPath(store, ""), query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// Subscription returns one subscription (without its secret).
func (c *Client) Subscription(ctx context.Context, store, id string, q *QueryOptions) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodGet, path: subPath(store, id), query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSubscription changes the fields set in p. Changing a subscription
// restarts its delivery loop.
func (c *Client) UpdateSubscription(ctx context.Context, store, id string, p SubscriptionPatch) (*Subscription, error) {
	body, err := marshal(p)
	if err != nil {
		return nil, err
	}
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodPatch, path: subPath(store, id), body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSubscription deletes a subscription with its retry set and
// delivery log.
func (c *Client) DeleteSubscription(ctx context.Context, store, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: subPath(store, id), idempotent: true}, nil)
	return err
}

// PauseSubscription stops deliveries; the cursor and retry set stay.
func (c *Client) PauseSubscription(ctx context.Context, store, id string) (*Subscription, error) {
	return c.subAction(ctx, store, id, "/pause", nil, true)
}

// EnableSubscription resumes a paused or disabled subscription from its
// cursor; waiting retries become due at once.
func (c *Client) EnableSubscription(ctx context.Context, store, id string) (*Subscription, error) {
	return c.subAction(ctx, store, id, "/enable", nil, true)
}

// RotateSecret makes a new secret current (r.Secret, or a generated one);
// the old one keeps signing for r.Grace. The answer holds the new secret.
func (c *Client) RotateSecret(ctx context.Context, store, id string, r RotateSecret) (*Subscription, error) {
	body, err := marshal(r)
	if err != nil {
		return nil, err
	}
	return c.subAction(ctx, store, id, "/secret/rotate", body, false)
}

func (c *Client) subAction(ctx context.Context, store, id, action string, body []byte, idem bool) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, call{method: http.MethodPost, path: subPath(store, id) + action, body: body, idempotent: idem}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestSubscription sends a herald.test event (not stored) to the endpoint
// now and returns the attempt: status, headers and the start of the body.
func (c *Client) TestSubscription(ctx context.Context, store, id string) (*Delivery, error) {
	var out Delivery
	if _, err := c.do(ctx, call{method: http.MethodPost, path: subPath(store, id) + "/test"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Deliveries reads a page of a subscription's delivery log.
func (c *Client) Deliveries(ctx context.Context, store, id string, dq DeliveryQuery) (*DeliveryPage, error) {
	q := url.Values{}
	if dq.Status != "" {
		q.Set("status", string(dq.Status))
	}
	if dq.After > 0 {
		q.Set("after", strconv.FormatUint(dq.After, 10))
	}
	if dq.Limit > 0 {
		q.Set("limit", strconv.Itoa(dq.Limit))
	}
	if dq.Consistency != "" {
		q.Set("consistency", string(dq.Consistency))
	}
	var out DeliveryPage
	if _, err := c.do(ctx, call{method: http.MethodGet, path: subPath(store, id) + "/deliveries", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventDeliveries returns every kept attempt to deliver one event.
func (c *Client) EventDeliveries(ctx context.Context, store, id, eventID string, q *QueryOptions) (*EventDeliveries, error) {
	var out EventDeliveries
	if _, err := c.do(ctx, call{method: http.MethodGet, path: subPath(store, id) + "/deliveries/" + seg(eventID),
		query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Redeliver queues one event of the store for delivery now, whatever its
// outcome so far.
func (c *Client) Redeliver(ctx context.Context, store, id, eventID string) (*Redelivery, error) {
	var out Redelivery
	if _, err := c.do(ctx, call{method: http.MethodPost, path: subPath(store, id) + "/deliveries/" + seg(eventID) + "/redeliver"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Replay re-sends a store's events from a seq or a time (or only the dead
// deliveries from there).
func (c *Client) Replay(ctx context.Context, store, id string, r Replay) (*ReplayResult, error) {
	body, err := marshal(r)
	if err != nil {
		return nil, err
	}
	var out ReplayResult
	if _, err := c.do(ctx, call{method: http.MethodPost, path: subPath(store, id) + "/replay", body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
