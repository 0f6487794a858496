package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herald-io/herald/api"
)

// DeliverConfig describes a delivery run against a cluster's HTTP API.
type DeliverConfig struct {
	Target        string    // HTTP address (host:port) to create subscriptions and publish on
	APIKey        string    // sent as a bearer token ("" for a cluster without auth)
	Store         string    // default "bench-deliver"
	Receiver      *Receiver // required: where the subscriptions point
	Subscriptions int       // each receives every event (default 1)
	Ordered       bool      // ordered subscriptions (max_in_flight 1)
	MaxInFlight   int       // per unordered subscription (default 64)
	Payload       int       // bytes of data per event (default 512)
	Events        int       // backlog published, delivered to every subscription (default 50,000)
	// Timeout bounds the wait for the backlog to drain (default 5 min).
	Timeout  time.Duration
	Progress *Progress
}

func (c *DeliverConfig) defaults() error {
	if c.Target == "" || c.Receiver == nil {
		return errors.New("bench: deliver needs a target and a receiver")
	}
	if c.Store == "" {
		c.Store = "bench-deliver"
	}
	if c.Subscriptions <= 0 {
		c.Subscriptions = 1
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.Ordered {
		c.MaxInFlight = 1
	}
	if c.Payload <= 0 {
		c.Payload = 512
	}
	if c.Events <= 0 {
		c.Events = 50000
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	return nil
}

// benchSchedule retries quickly so a flaky receiver does not stall a run.
var benchSchedule = []string{"100ms", "250ms", "500ms", "1s", "2s", "5s", "10s"}

// storeClient is the benchmark's view of one store through api.Client.
type storeClient struct {
	c     *api.Client
	store string
}

func newStoreClient(target, apiKey, store string) (*storeClient, error) {
	c, err := newClient(target, apiKey)
	if err != nil {
		return nil, err
	}
	return &storeClient{c: c, store: store}, nil
}

type subInfo struct {
	ID     string
	Secret string
}

// subscribe creates a subscription and registers its secret with recv.
func (a *storeClient) subscribe(ctx context.Context, recv *Receiver, sc api.SubscriptionCreate) (subInfo, error) {
	sc.URL = api.Ptr(recv.URL())
	sc.RetrySchedule = api.Ptr(benchSchedule)
	sc.Description = api.Ptr("herald bench")
	s, err := a.c.CreateSubscription(ctx, a.store, sc)
	if err != nil {
		return subInfo{}, fmt.Errorf("bench: create subscription: %w", err)
	}
	recv.Secret(s.ID, s.Secret)
	return subInfo{ID: s.ID, Secret: s.Secret}, nil
}

func (a *storeClient) remove(ids []subInfo) {
	for _, s := range ids {
		a.c.DeleteSubscription(context.Background(), a.store, s.ID)
	}
}

// settled reports whether Herald considers every event up to last
// handed off for the subscription: cursor at the end, retry set empty.
func (a *storeClient) settled(ctx context.Context, id string, last uint64) (bool, error) {
	s, err := a.c.Subscription(ctx, a.store, id, nil)
	if err != nil {
		return false, err
	}
	if s.Cursor < last {
		return false, nil
	}
	p, err := a.c.Deliveries(ctx, a.store, id, api.DeliveryQuery{Status: api.DeliveryPending, Limit: 1})
	if err != nil {
		return false, err
	}
	return len(p.Deliveries) == 0, nil
}

// allSettled reports whether every subscription is settled up to last.
func (a *storeClient) allSettled(ctx context.Context, subs []subInfo, last uint64) (bool, error) {
	for _, s := range subs {
		ok, err := a.settled(ctx, s.ID, last)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Deliver publishes a backlog to paused subscriptions, enables them and
// times until every event reached the receiver for every subscription and
// every subscription's cursor — committed through Raft — is at the end.
// An event Herald considers delivered that the receiver never recorded is
// counted as lost.
func Deliver(ctx context.Context, cfg DeliverConfig) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	name := fmt.Sprintf("deliver-%d", cfg.Subscriptions)
	if cfg.Ordered {
		name = fmt.Sprintf("deliver-ordered-%d", cfg.Subscriptions)
	}
	res := Result{Name: name, Unit: "deliveries/s", Params: map[string]any{
		"subscriptions": cfg.Subscriptions, "ordered": cfg.Ordered, "max_in_flight": cfg.MaxInFlight, "payload": cfg.Payload, "events": cfg.Events}}
	a, err := newStoreClient(cfg.Target, cfg.APIKey, cfg.Store)
	if err != nil {
		return res, err
	}
	defer a.c.CloseIdleConnections()
	var subs []subInfo
	defer func() { a.remove(subs) }()
	for i := 0; i < cfg.Subscriptions; i++ {
		s, err := a.subscribe(ctx, cfg.Receiver, api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{
			Enabled: api.Ptr(false), Ordered: api.Ptr(cfg.Ordered), MaxInFlight: api.Ptr(cfg.MaxInFlight)}})
		if err != nil {
			return res, err
		}
		subs = append(subs, s)
	}
	last, published, err := a.publishBacklog(ctx, cfg.Events, cfg.Payload, cfg.Progress)
	if err != nil {
		return res, err
	}
	res.Events = int64(published)
	want := int64(published * cfg.Subscriptions)
	before := cfg.Receiver.Stats()
	start, cpu0 := time.Now(), processCPU()
	for _, s := range subs {
		if _, err := a.c.EnableSubscription(ctx, a.store, s.ID); err != nil {
			return res, fmt.Errorf("bench: enable: %w", err)
		}
	}
	deadline := time.Now().Add(cfg.Timeout)
	for {
		got := cfg.Receiver.Stats().Delivered - before.Delivered
		// Done when Herald has settled every subscription: with all
		// deliveries received, or (checked after a second) with some
		// missing at the receiver, which count as lost.
		if got >= want || time.Since(start) > time.Second {
			done, err := a.allSettled(ctx, subs, last)
			if err != nil {
				return res, err
			}
			if done {
				break
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: %d of %d deliveries after %v", got, want, cfg.Timeout)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-cfg.Receiver.changed:
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	res.Duration = time.Since(start)
	cpu := processCPU() - cpu0
	after := cfg.Receiver.Stats()
	res.Deliveries = after.Delivered - before.Delivered
	res.Lost = want - res.Deliveries
	res.Duplicates = after.Duplicates - before.Duplicates
	res.Errors = after.BadSignatures - before.BadSignatures
	res.Throughput = float64(res.Deliveries) / res.Duration.Seconds()
	res.CPUPerUnit = perUnit(cpu, res.Deliveries)
	return res, nil
}

// publishBacklog publishes n events in batches of 500 and returns the
// last seq and how many were published.
func (a *storeClient) publishBacklog(ctx context.Context, n, payload int, p *Progress) (uint64, int, error) {
	const batch = 500
	evs := newEvents(batch, Payload(payload))
	var last uint64
	published := 0
	for published < n {
		k := max(min(batch, n-published), 2) // a batch body holds two or more
		if p != nil {
			p.Sent.Add(int64(k))
		}
		out, err := a.c.PublishBatch(ctx, a.store, evs[:k])
		if err != nil {
			return 0, 0, fmt.Errorf("bench: publish backlog: %w", err)
		}
		if p != nil {
			p.Acked.Add(int64(k))
		}
		if len(out.Events) > 0 {
			last = out.Events[len(out.Events)-1].Seq
		}
		published += k
	}
	return last, published, nil
}

// LatencyConfig describes the fixed-rate scenario.
type LatencyConfig struct {
	Target   string
	APIKey   string
	Store    string // default "bench-latency"
	Receiver *Receiver
	Rate     float64       // events/s (default 1,000)
	Duration time.Duration // default 10s
	Payload  int
	Clients  int // default 64
	Progress *Progress
}

// Latency publishes single events at a fixed rate to a store with one
// subscription and measures the publish latency (from when each request
// was due: no coordinated omission) and publish ack → first receipt.
func Latency(ctx context.Context, cfg LatencyConfig) (Result, error) {
	if cfg.Target == "" || cfg.Receiver == nil {
		return Result{}, errors.New("bench: latency needs a target and a receiver")
	}
	if cfg.Store == "" {
		cfg.Store = "bench-latency"
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 64
	}
	a, err := newStoreClient(cfg.Target, cfg.APIKey, cfg.Store)
	if err != nil {
		return Result{}, err
	}
	defer a.c.CloseIdleConnections()
	sub, err := a.subscribe(ctx, cfg.Receiver, api.SubscriptionCreate{})
	if err != nil {
		return Result{}, err
	}
	defer a.remove([]subInfo{sub})
	var mu sync.Mutex
	acked := map[string]time.Time{}
	res, err := Publish(ctx, PublishConfig{Targets: []string{cfg.Target}, APIKey: cfg.APIKey, Store: cfg.Store, Clients: cfg.Clients, Batch: 1,
		Payload: cfg.Payload, Duration: cfg.Duration, Rate: cfg.Rate, Progress: cfg.Progress,
		OnAck: func(id string, _, at time.Time) {
			mu.Lock()
			acked[id] = at
			mu.Unlock()
		}})
	if err != nil {
		return res, err
	}
	res.Name = "latency"
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	deadline := time.Now().Add(30 * time.Second)
	for {
		hist.Reset()
		missing := 0
		mu.Lock()
		for id, at := range acked {
			got, ok := cfg.Receiver.FirstReceipt(sub.ID, id)
			if !ok {
				missing++
				continue
			}
			hist.RecordValue(int64(max(got.Sub(at), 0) / time.Microsecond)) // delivered before the ack arrived: 0
		}
		mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			res.Lost = int64(missing)
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-cfg.Receiver.changed:
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	res.E2EP50, res.E2EP90, res.E2EP99, res.E2EMax = us(hist.ValueAtQuantile(50)), us(hist.ValueAtQuantile(90)), us(hist.ValueAtQuantile(99)), us(hist.Max())
	res.Deliveries = int64(hist.TotalCount())
	return res, nil
}
