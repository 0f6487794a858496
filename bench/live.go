package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/api"
)

// LiveConfig describes the end-to-end delivery scenario: events published
// while the subscription is live, timed from the first publish to the last
// receipt.
type LiveConfig struct {
	Target   string
	APIKey   string
	Store    string // default "bench-deliver-live"
	Receiver *Receiver
	Events   int // default 20,000
	Batch    int // events per publish request (default 100)
	Clients  int // concurrent publishers (default 4)
	Payload  int
	// MaxInFlight of the subscription (default 64).
	MaxInFlight int
	Timeout     time.Duration // default 5 min
	Progress    *Progress
}

// DeliverLive publishes cfg.Events events in batches to a store with one
// enabled subscription and measures from the first publish request to the
// moment the receiver has them all: publishing, replication, the
// dispatcher, the signed POSTs and the result commits all run at once, as
// in production. It then waits for the subscription to settle (cursor at
// the end, nothing pending) so a delivery Herald considers done but the
// receiver never saw counts as lost; that wait is not timed.
func DeliverLive(ctx context.Context, cfg LiveConfig) (Result, error) {
	if cfg.Target == "" || cfg.Receiver == nil {
		return Result{}, fmt.Errorf("bench: deliver-live needs a target and a receiver")
	}
	if cfg.Store == "" {
		cfg.Store = "bench-deliver-live"
	}
	if cfg.Events <= 0 {
		cfg.Events = 20000
	}
	if cfg.Batch < 2 {
		cfg.Batch = 100
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 4
	}
	if cfg.Payload <= 0 {
		cfg.Payload = 512
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	res := Result{Name: "deliver-live", Unit: "deliveries/s", Params: map[string]any{
		"events": cfg.Events, "batch": cfg.Batch, "clients": cfg.Clients, "payload": cfg.Payload, "max_in_flight": cfg.MaxInFlight}}
	a, err := newStoreClient(cfg.Target, cfg.APIKey, cfg.Store)
	if err != nil {
		return res, err
	}
	defer a.c.CloseIdleConnections()
	sub, err := a.subscribe(ctx, cfg.Receiver, api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{MaxInFlight: api.Ptr(cfg.MaxInFlight)}})
	if err != nil {
		return res, err
	}
	defer a.remove([]subInfo{sub})

	before := cfg.Receiver.Stats()
	evs := newEvents(cfg.Batch, Payload(cfg.Payload))
	var (
		next      atomic.Int64 // events handed to publishers
		published atomic.Int64
		mu        sync.Mutex
		last      uint64
		pubErr    error
		wg        sync.WaitGroup
	)
	start, cpu0 := time.Now(), processCPU()
	var pubDone time.Duration
	for range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int64(cfg.Batch)
				n := next.Add(k)
				if n-k >= int64(cfg.Events) {
					return
				}
				k = max(min(k, int64(cfg.Events)-(n-k)), 2)
				if cfg.Progress != nil {
					cfg.Progress.Sent.Add(k)
				}
				out, err := a.c.PublishBatch(ctx, a.store, evs[:k])
				mu.Lock()
				if err != nil {
					if pubErr == nil {
						pubErr = fmt.Errorf("bench: deliver-live publish: %w", err)
					}
					mu.Unlock()
					return
				}
				if len(out.Events) > 0 {
					last = max(last, out.Events[len(out.Events)-1].Seq)
				}
				mu.Unlock()
				published.Add(k)
				if cfg.Progress != nil {
					cfg.Progress.Acked.Add(k)
				}
			}
		}()
	}
	wg.Wait()
	pubDone = time.Since(start)
	duringPublish := cfg.Receiver.Stats().Delivered - before.Delivered
	if pubErr != nil {
		return res, pubErr
	}
	res.Events = published.Load()
	want := res.Events
	deadline := start.Add(cfg.Timeout)
	for cfg.Receiver.Stats().Delivered-before.Delivered < want {
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-cfg.Receiver.changed:
		case <-time.After(5 * time.Millisecond): // polling interval
		}
	}
	res.Duration = time.Since(start)
	cpu := processCPU() - cpu0
	for {
		done, err := a.allSettled(ctx, []subInfo{sub}, last)
		if err != nil {
			return res, err
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: deliver-live: not settled after %v", cfg.Timeout)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	after := cfg.Receiver.Stats()
	res.Deliveries = after.Delivered - before.Delivered
	res.Lost = max(want-res.Deliveries, 0)
	res.Duplicates = after.Duplicates - before.Duplicates
	res.Errors = after.BadSignatures - before.BadSignatures
	res.Throughput = float64(res.Deliveries) / res.Duration.Seconds()
	res.CPUPerUnit = perUnit(cpu, res.Deliveries)
	res.Params["publish_seconds"] = pubDone.Seconds()
	res.Params["publish_events_per_s"] = float64(res.Events) / pubDone.Seconds()
	res.Params["delivered_while_publishing"] = duringPublish
	return res, nil
}
