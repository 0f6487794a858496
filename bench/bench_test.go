package bench

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

func startCluster(t testing.TB, size int) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background(), t.TempDir(), size, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPublishAccounting runs each publish mode briefly against a real
// three-node cluster and checks the result is well-formed and matches what
// the cluster stored.
func TestPublishAccounting(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.LeaderAddr()
	ctx := context.Background()
	for _, cfg := range []PublishConfig{
		{Store: "single", Clients: 4, Batch: 1, Payload: 64, Duration: 300 * time.Millisecond},
		{Store: "batch", Clients: 2, Batch: 10, Payload: 64, Duration: 300 * time.Millisecond},
		{Store: "rate", Clients: 4, Batch: 1, Payload: 64, Duration: 500 * time.Millisecond, Rate: 200},
	} {
		cfg.Targets = []string{leader}
		r, err := Publish(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Errors != 0 || r.Events == 0 || r.Events != r.Requests*int64(cfg.Batch) {
			t.Fatalf("%s: %+v", cfg.Store, r)
		}
		if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.Throughput <= 0 {
			t.Fatalf("%s: latency or throughput not sane: %+v", cfg.Store, r)
		}
		got, err := StoreLastSeq(ctx, leader, cfg.Store)
		if err != nil {
			t.Fatal(err)
		}
		if got != uint64(r.Events) {
			t.Fatalf("%s: bench counted %d acknowledged events, cluster holds %d", cfg.Store, r.Events, got)
		}
		if cfg.Rate > 0 && (r.Throughput > cfg.Rate*1.5) {
			t.Fatalf("fixed rate %v/s overshot: %.0f/s", cfg.Rate, r.Throughput)
		}
	}
	// A target that refuses every request is reported as errors, not as
	// throughput.
	r, err := Publish(ctx, PublishConfig{Targets: []string{"127.0.0.1:1"}, Clients: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 0 || r.Errors == 0 || r.FirstError == "" {
		t.Fatalf("unreachable target: %+v", r)
	}
}

func benchmarkPublish(b *testing.B, clients, batch int) {
	c := startCluster(b, 3)
	b.ResetTimer()
	r, err := Publish(context.Background(), PublishConfig{
		Targets: []string{c.LeaderAddr()}, Clients: clients, Batch: batch, Payload: 512,
		Duration: time.Duration(b.N) * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	if r.Errors > 0 {
		b.Fatalf("%d errors: %s", r.Errors, r.FirstError)
	}
	b.ReportMetric(r.Throughput, "events/s")
	b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
}

// BenchmarkPublish64Clients: single-event requests from 64 clients to a
// three-node loopback cluster. b.N is the run length in milliseconds; use
// -benchtime=10000x for a 10 s run.
func BenchmarkPublish64Clients(b *testing.B) { benchmarkPublish(b, 64, 1) }

// BenchmarkPublishBatch100: 16 clients sending batches of 100.
func BenchmarkPublishBatch100(b *testing.B) { benchmarkPublish(b, 16, 100) }

// TestFailoverAccounting kills the leader of a small cluster under load:
// nothing acknowledged may be lost or doubled, the gap must be measured,
// and a deliberately dropped event must be reported as lost.
func TestFailoverAccounting(t *testing.T) {
	c := startCluster(t, 3)
	r, err := Failover(context.Background(), c, 4, 64, 300*time.Millisecond, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Acked == 0 || r.Lost != 0 || r.Duplicates != 0 || r.Gap <= 0 || r.NewLeader == "" || r.NewLeader == r.Killed {
		t.Fatalf("failover result: %+v", r)
	}
	// The accounting itself can fail: an id that was never stored counts
	// as lost.
	var survivor = c.Nodes[0]
	for _, n := range c.Nodes {
		if n.ID() == r.NewLeader {
			survivor = n
		}
	}
	lost, dups, err := account(survivor, "bench-failover", []string{"f0-0", "never-published"})
	if err != nil || lost != 1 || dups != 0 {
		t.Fatalf("account with a dropped event: lost=%d dups=%d err=%v", lost, dups, err)
	}
}
