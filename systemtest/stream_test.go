package systemtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// TestStreamSurvivesItsNode: a client follows the event stream through a
// follower while events are published; the follower is killed (-9); the
// client reconnects to another node with Last-Event-ID and ends up with
// every event, in order, once: no gap, no duplicate.
func TestStreamSurvivesItsNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herald processes")
	}
	c := startCluster(t, 3)
	l := c.leader()
	f := c.nodes[(indexOf(c, l)+1)%len(c.nodes)]
	addrs := []string{f.http}
	for _, n := range c.nodes {
		if n != f {
			addrs = append(addrs, n.http)
		}
	}
	client, err := api.NewClient(api.Config{Addresses: addrs, APIKey: keyOf(l.http), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seqs []uint64
	got := func() []uint64 { mu.Lock(); defer mu.Unlock(); return append([]uint64(nil), seqs...) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- client.Stream(ctx, "shop", api.ReadOptions{}, func(e api.Event) error {
			mu.Lock()
			seqs = append(seqs, e.Seq)
			mu.Unlock()
			return nil
		})
	}()
	w := startWorkload(c, 2)
	testutil.WaitFor(t, 30*time.Second, "the stream delivers", func() bool { return len(got()) >= 50 })
	f.kill9()
	at := len(got())
	testutil.WaitFor(t, 30*time.Second, "the stream resumes on another node", func() bool { return len(got()) >= at+100 })
	w.finish()
	var last uint64
	testutil.WaitFor(t, 30*time.Second, "the leader's last seq", func() bool {
		si, err := apiOf(c.leader().http).Store(context.Background(), "shop", nil)
		if err != nil {
			return false
		}
		last = si.LastSeq
		return true
	})
	testutil.WaitFor(t, 30*time.Second, "every event streamed", func() bool { return uint64(len(got())) >= last })
	cancel()
	<-done
	s := got()
	for i, seq := range s {
		if seq != uint64(i)+1 {
			t.Fatalf("message %d has seq %d: a gap or a duplicate (around %v)", i, seq, s[max(0, i-3):min(len(s), i+3)])
		}
	}
	t.Logf("%d events streamed across the loss of %s, after %d of them", len(s), f.id, at)
}
