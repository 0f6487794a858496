package systemtest

import (
	"context"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// TestRollingRestart restarts every node in turn with SIGTERM (as an
// upgrade would) under load: nothing acknowledged is lost, every event is
// delivered, and the longest stall of publishing and of delivery is
// reported and bounded.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herald processes")
	}
	c := startCluster(t, 3)
	recv := newReceiver(t)
	s, err := apiOf(c.leader().http).CreateSubscription(context.Background(), "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{
		URL: &recv.srv.URL, RetrySchedule: &[]string{"100ms", "500ms", "1s", "2s", "5s"}}})
	if err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	w := startWorkload(c, 16)
	testutil.WaitFor(t, 60*time.Second, "workload running", func() bool { return w.count() >= 50 })
	start := time.Now()
	before := w.count()
	// Followers first, the leader last: the usual order of an upgrade.
	l := c.leader()
	order := []*node{}
	for _, n := range c.nodes {
		if n != l {
			order = append(order, n)
		}
	}
	order = append(order, l)
	for _, n := range order {
		n.term()
		n.restart()
		testutil.WaitFor(t, 30*time.Second, n.id+" back", func() bool { return ready(n.http) })
		testutil.WaitFor(t, 30*time.Second, "cluster whole", c.formed)
	}
	elapsed := time.Since(start)
	during := w.count() - before
	acked := w.finish()
	pubStall := maxGap(&w.mu, &w.ackAt, start)
	testutil.WaitFor(t, 60*time.Second, "every acknowledged event delivered", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for id := range acked {
			if recv.got[s.ID][id] == 0 {
				return false
			}
		}
		return true
	})
	delStall := maxGap(&recv.mu, &recv.at, start)
	t.Logf("rolling restart of 3 nodes in %v under load: %d events acknowledged meanwhile (%.0f/s); longest stall: publishing %v, delivery %v",
		elapsed.Round(time.Millisecond), during, float64(during)/elapsed.Seconds(), pubStall.Round(time.Millisecond), delStall.Round(time.Millisecond))
	if pubStall > 5*time.Second || delStall > 5*time.Second {
		t.Fatalf("stalled too long: publishing %v, delivery %v", pubStall, delStall)
	}
}

// maxGap is the longest interval between consecutive times in ts after
// from.
func maxGap(mu interface {
	Lock()
	Unlock()
}, ts *[]int64, from time.Time) time.Duration {
	mu.Lock()
	defer mu.Unlock()
	var gap time.Duration
	prev := from.UnixNano()
	for _, t := range *ts {
		if t <= from.UnixNano() {
			continue
		}
		gap = max(gap, time.Duration(t-prev))
		prev = t
	}
	return gap
}
