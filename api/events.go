package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func storePath(store string) string { return "/v1/stores/" + seg(store) }

// Publish publishes one event (POST /v1/stores/{store}/events). Data is
// sent byte for byte (a nil Data is the JSON null) and comes back so. With an ID or IdempotencyKey the
// request is idempotent and retried on another node when one fails.
func (c *Client) Publish(ctx context.Context, store string, ev NewEvent) (*PublishResult, error) {
	body, err := publishBody([]NewEvent{ev}, false)
	if err != nil {
		return nil, err
	}
	cl := call{method: http.MethodPost, path: storePath(store) + "/events", body: body,
		idempotent: ev.ID != "" || ev.IdempotencyKey != ""}
	cl.header = c.publishHeader()
	if ev.IdempotencyKey != "" {
		cl.header.Set(HeaderIdempotencyKey, ev.IdempotencyKey)
	}
	var out Event
	st, err := c.do(ctx, cl, &out)
	if err != nil {
		return nil, err
	}
	return &PublishResult{Events: []Event{out}, Created: st == http.StatusCreated}, nil
}

// PublishBatch publishes up to MaxBatchEvents events as one all-or-nothing
// batch. It is idempotent (and retried) when every event has an ID.
func (c *Client) PublishBatch(ctx context.Context, store string, evs []NewEvent) (*PublishResult, error) {
	body, err := publishBody(evs, true)
	if err != nil {
		return nil, err
	}
	idem := len(evs) > 0
	for i := range evs {
		idem = idem && evs[i].ID != ""
	}
	var out EventList
	st, err := c.do(ctx, call{method: http.MethodPost, path: storePath(store) + "/events", body: body, idempotent: idem, header: c.publishHeader()}, &out)
	if err != nil {
		return nil, err
	}
	return &PublishResult{Events: out.Events, Created: st == http.StatusCreated}, nil
}

func (c *Client) publishHeader() http.Header {
	h := http.Header{}
	if c.cfg.PublishWithoutData {
		h.Set(HeaderPrefer, PreferMinimal)
	}
	return h
}

func readQuery(o ReadOptions) url.Values {
	q := url.Values{}
	if o.After > 0 {
		q.Set("after", strconv.FormatUint(o.After, 10))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	for _, t := range o.Types {
		q.Add("type", t)
	}
	if o.Wait > 0 {
		q.Set("wait", o.Wait.String())
	}
	if o.Consistency != "" {
		q.Set("consistency", string(o.Consistency))
	}
	return q
}

// Events reads a page of a store's events (GET /v1/stores/{store}/events),
// long-polling up to o.Wait when none match yet.
func (c *Client) Events(ctx context.Context, store string, o ReadOptions) (*EventPage, error) {
	var out EventPage
	_, err := c.do(ctx, call{method: http.MethodGet, path: storePath(store) + "/events", query: readQuery(o),
		idempotent: true, extra: o.Wait}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Follow calls fn with every event of the store after o.After that
// matches o.Types, in order, waiting for new ones with long polls, until
// ctx ends (it then returns ctx's error) or fn returns an error (returned
// as is). A node that is unreachable or has no leader is waited out with
// back-off; any other error ends Follow.
func (c *Client) Follow(ctx context.Context, store string, o ReadOptions, fn func(Event) error) error {
	if o.Wait <= 0 {
		o.Wait = MaxWait
	}
	backoff := 100 * time.Millisecond
	for {
		page, err := c.Events(ctx, store, o)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ae *Error
			if errors.As(err, &ae) && !ae.Retryable() {
				return err
			}
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, ev := range page.Events {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if page.Next > o.After {
			o.After = page.Next
		}
	}
}

// Event returns one event by id (GET /v1/stores/{store}/events/{id}).
func (c *Client) Event(ctx context.Context, store, id string, q *QueryOptions) (*Event, error) {
	var out Event
	if _, err := c.do(ctx, call{method: http.MethodGet, path: storePath(store) + "/events/" + seg(id), query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stores lists every store (GET /v1/stores).
func (c *Client) Stores(ctx context.Context, q *QueryOptions) ([]Store, error) {
	var out StoreList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/stores", query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Stores, nil
}

// Store returns a store's summary (GET /v1/stores/{store}); not_found
// before its first event.
func (c *Client) Store(ctx context.Context, store string, q *QueryOptions) (*Store, error) {
	var out Store
	if _, err := c.do(ctx, call{method: http.MethodGet, path: storePath(store), query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Types lists the event types of a store's events with their counts and
// newest events (GET /v1/stores/{store}/types); not_found before its
// first event.
func (c *Client) Types(ctx context.Context, store string, q *QueryOptions) (*StoreTypes, error) {
	var out StoreTypes
	if _, err := c.do(ctx, call{method: http.MethodGet, path: storePath(store) + "/types", query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetRetention sets a store's retention policy (PUT /v1/stores/{store});
// the zero Retention returns it to the server default.
func (c *Client) SetRetention(ctx context.Context, store string, r Retention) (*StoreRetention, error) {
	body, err := marshal(SetRetention{Retention: &r})
	if err != nil {
		return nil, err
	}
	var out StoreRetention
	if _, err := c.do(ctx, call{method: http.MethodPut, path: storePath(store), body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
