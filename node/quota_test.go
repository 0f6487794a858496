package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// TestSubscriptionQuota: a store holds at most MaxSubscriptionsPerStore
// subscriptions; past it a create answers 409 and changes nothing, other
// stores are not affected, and a delete frees a place.
func TestSubscriptionQuota(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.MaxSubscriptionsPerStore = 3
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	c := clientOf(t, n)
	ctx := context.Background()
	recv := newCountingReceiver(t)
	create := func(store string) (*api.Subscription, error) {
		return c.CreateSubscription(ctx, store, api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}})
	}
	var first *api.Subscription
	for i := 0; i < 3; i++ {
		s, err := create("shop")
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = s
		}
	}
	_, err := create("shop")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || !strings.Contains(ae.Message, "has 3 subscriptions") {
		t.Fatalf("the 4th subscription: %v", err)
	}
	if subs, _ := c.Subscriptions(ctx, "shop", nil); len(subs) != 3 {
		t.Fatalf("%d subscriptions after a refused create", len(subs))
	}
	if _, err := create("plant"); err != nil {
		t.Fatalf("another store: %v", err)
	}
	if err := c.DeleteSubscription(ctx, "shop", first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := create("shop"); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// TestWaitingReadsAreCapped: at most MaxWaiters reads long-poll at once;
// the next one with wait answers 503 with Retry-After at once, one
// without wait is served, and the waiting ones are woken by their store.
func TestWaitingReadsAreCapped(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.MaxWaiters = 2
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	c := clientOf(t, n)
	ctx := context.Background()
	done := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			page, err := c.Events(ctx, "shop", api.ReadOptions{Wait: 20 * time.Second})
			if err == nil && len(page.Events) != 1 {
				err = fmt.Errorf("woken with %d events", len(page.Events))
			}
			done <- err
		}()
	}
	waitFor(t, 10*time.Second, "two waiting reads", func() bool { return n.waiters.Load() == 2 })
	start := time.Now()
	_, err := c.Events(ctx, "shop", api.ReadOptions{Wait: 20 * time.Second})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.RetryAfter == 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("a third waiting read: %v after %s", err, time.Since(start))
	}
	if _, err := c.Events(ctx, "shop", api.ReadOptions{}); err != nil {
		t.Fatalf("a read without wait: %v", err)
	}
	if _, err := c.Publish(ctx, "shop", api.NewEvent{Type: "t", Data: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a waiting read was not woken by its store's append")
		}
	}
	if w := n.waiters.Load(); w != 0 {
		t.Fatalf("%d waiters left", w)
	}
}
