package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// BenchmarkDeliverCluster measures delivery throughput from a three-node
// loopback cluster: b.N events are published to a paused subscription,
// which is then enabled; the clock runs until the receiver has every event
// and the subscription's cursor, committed through Raft, is at the end.
func BenchmarkDeliverCluster(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) { benchDeliver(b, subs, 64) })
	}
}

func benchDeliver(b *testing.B, subs, inFlight int) {
	nodes := mustStartCluster(b, 3, nil)
	benchDeliverOn(b, leaderOf(b, nodes), subs, inFlight)
}

func benchDeliverOn(b *testing.B, leader *testNode, subs, inFlight int) {
	ctx := context.Background()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var ids []string
	for i := 0; i < subs; i++ {
		s, err := leader.CreateSubscription(ctx, subRequest("bench", hlog.SubPatch{
			URL: &srv.URL, MaxInFlight: &inFlight, Status: api.Ptr(hlog.SubPaused)}))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	events := b.N / subs
	if events < 1 {
		events = 1
	}
	data := []byte(`"` + string(make([]byte, 0)) + fmt.Sprintf("%0510d", 0) + `"`)
	var last uint64
	for sent := 0; sent < events; {
		n := min(500, events-sent)
		evs := make([]hlog.NewEvent, n)
		for i := range evs {
			evs[i] = hlog.NewEvent{Type: "order.created", Data: data}
		}
		res, err := leader.Publish(ctx, httpapi.PublishRequest{Store: "bench", Events: evs})
		if err != nil {
			b.Fatal(err)
		}
		last = res[len(res)-1].Event.Seq
		sent += n
	}
	active := hlog.SubActive
	b.ResetTimer()
	start := time.Now()
	for _, id := range ids {
		if _, err := leader.UpdateSubscription(ctx, "bench", id, hlog.SubPatch{Status: &active}); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 10*time.Minute, "all delivered and committed", func() bool {
		if got.Load() < int64(events*subs) {
			return false
		}
		for _, id := range ids {
			s, err := leader.DB().Subscription(id)
			if err != nil || s.Cursor < last {
				return false
			}
		}
		return true
	})
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(events*subs)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(got.Load()-int64(events*subs)), "duplicates")
}
