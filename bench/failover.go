package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node"
)

// FailoverConfig describes a leader kill under load.
type FailoverConfig struct {
	Clients       int           // publishers (default 16)
	Payload       int           // bytes (default 512)
	Before, After time.Duration // load before and after the kill (default 3s, 5s)
	Receiver      *Receiver     // required: a subscription receives every event
	Progress      *Progress
}

// Failover publishes steadily through the followers of an in-process
// cluster to a store with one subscription, closes the leader without a
// leadership transfer, keeps publishing for After, then checks every
// acknowledged event: stored once on a survivor, and delivered. It reports
// the gaps from the kill to the first acknowledged publish and to the
// first delivery by the new leader. Each request is tried once: riding out
// the election is the server's job.
func Failover(ctx context.Context, c *Cluster, cfg FailoverConfig) (Result, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Payload <= 0 {
		cfg.Payload = 512
	}
	if cfg.Before <= 0 {
		cfg.Before = 3 * time.Second
	}
	if cfg.After <= 0 {
		cfg.After = 5 * time.Second
	}
	clients, before, after := cfg.Clients, cfg.Before, cfg.After
	res := Result{Name: "failover", Unit: "events/s", Params: map[string]any{"clients": clients, "payload": cfg.Payload,
		"before": before.String(), "after": after.String()}}
	var leader *node.Node
	var survivors []*node.Node
	for _, n := range c.Nodes {
		if n.IsLeader() {
			leader = n
		} else {
			survivors = append(survivors, n)
		}
	}
	if leader == nil || len(survivors) < 2 {
		return res, errors.New("bench: failover needs a leader and two followers")
	}
	store := "bench-failover"
	data := Payload(cfg.Payload)
	if cfg.Receiver == nil {
		return res, errors.New("bench: failover needs a receiver")
	}
	a, err := newStoreClient(leader.HTTPAddr(), "", store)
	if err != nil {
		return res, err
	}
	defer a.c.CloseIdleConnections()
	sub, err := a.subscribe(ctx, cfg.Receiver, api.SubscriptionCreate{})
	if err != nil {
		return res, err
	}
	recvBefore := cfg.Receiver.Stats()
	targets := make([]*api.Client, len(survivors))
	for i, n := range survivors {
		if targets[i], err = newClient(n.HTTPAddr(), ""); err != nil {
			return res, err
		}
		defer targets[i].CloseIdleConnections()
	}

	var (
		mu     sync.Mutex
		acked  []string
		killAt time.Time
		gap    time.Duration
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := targets[w%len(targets)]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				id := fmt.Sprintf("f%d-%d", w, i)
				sent := time.Now()
				if cfg.Progress != nil {
					cfg.Progress.Sent.Add(1)
				}
				_, err := client.Publish(ctx, store, api.NewEvent{ID: id, Type: "bench/failover", Data: data})
				done := time.Now()
				mu.Lock()
				if err != nil {
					res.Errors++
				} else {
					if cfg.Progress != nil {
						cfg.Progress.Acked.Add(1)
					}
					acked = append(acked, id)
					if !killAt.IsZero() && sent.After(killAt) && (gap == 0 || done.Sub(killAt) < gap) {
						gap = done.Sub(killAt)
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // client back-off
				}
			}
		}()
	}
	sleepCtx(ctx, before)
	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	res.Params["killed"] = leader.ID()
	leader.Close() // returns once the old leader sends nothing more
	closed := time.Now()
	sleepCtx(ctx, after)
	close(stop)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	// Account on a survivor once it has applied everything.
	check := survivors[0]
	for _, n := range survivors {
		if n.IsLeader() {
			res.Params["new_leader"] = n.ID()
			check = n
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for check.Ready(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	res.Events, res.PublishGap = int64(len(acked)), gap
	res.Duration = before + after
	res.Throughput = float64(res.Events) / res.Duration.Seconds()
	lost, dups, err := account(check, store, acked)
	if err != nil {
		return res, err
	}
	res.Params["stored_lost"], res.Params["stored_duplicates"] = lost, dups
	// Every acknowledged event must also be delivered.
	var undelivered int
	var firstAfter time.Time
	for deadline := time.Now().Add(30 * time.Second); ; {
		undelivered, firstAfter = 0, time.Time{}
		for _, id := range acked {
			at, ok := cfg.Receiver.FirstReceipt(sub.ID, id)
			if !ok {
				undelivered++
			} else if at.After(closed) && (firstAfter.IsZero() || at.Before(firstAfter)) {
				firstAfter = at
			}
		}
		if undelivered == 0 || time.Now().After(deadline) {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond) // polling interval
	}
	if !firstAfter.IsZero() {
		res.DeliveryGap = firstAfter.Sub(killAt)
	}
	st := cfg.Receiver.Stats()
	res.Deliveries = st.Delivered - recvBefore.Delivered
	res.Duplicates = st.Duplicates - recvBefore.Duplicates
	res.Lost = int64(lost + undelivered)
	res.Params["undelivered"] = undelivered
	if dups > 0 {
		return res, fmt.Errorf("bench: %d acknowledged events stored twice", dups)
	}
	return res, nil
}

// account checks acknowledged ids against a node's log: lost are acked ids
// it does not hold, duplicates ids it holds more than once.
func account(n *node.Node, store string, acked []string) (lost, duplicates int, err error) {
	for _, id := range acked {
		if _, err := n.DB().Get(store, id); err != nil {
			lost++
		}
	}
	seen := map[string]int{}
	var after uint64
	for {
		evs, next, err := n.DB().Read(store, hlog.ReadOptions{After: after, Limit: 1000})
		if err != nil {
			return lost, duplicates, err
		}
		for _, e := range evs {
			seen[e.ID]++
		}
		if len(evs) == 0 || next == after {
			break
		}
		after = next
	}
	for _, c := range seen {
		if c > 1 {
			duplicates++
		}
	}
	return lost, duplicates, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
