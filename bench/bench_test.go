package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/node"
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
		got, err := StoreLastSeq(ctx, leader, "", cfg.Store)
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
// nothing acknowledged may be lost (stored or delivered) or stored twice,
// the gaps must be measured, and an id that was never stored must be
// reported as lost.
func TestFailoverAccounting(t *testing.T) {
	c := startCluster(t, 3)
	recv := mustReceiver(t, ReceiverConfig{})
	r, err := Failover(context.Background(), c, FailoverConfig{Clients: 4, Payload: 64, Before: 300 * time.Millisecond, After: 1500 * time.Millisecond, Receiver: recv})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Events == 0 || r.Lost != 0 || r.PublishGap <= 0 || r.DeliveryGap <= 0 || r.Params["new_leader"] == nil || r.Params["new_leader"] == r.Params["killed"] {
		t.Fatalf("failover result: %+v", r)
	}
	if r.Deliveries < r.Events {
		t.Fatalf("%d deliveries for %d acknowledged events", r.Deliveries, r.Events)
	}
	var survivor = c.Nodes[0]
	for _, n := range c.Nodes {
		if n.ID() == r.Params["new_leader"] {
			survivor = n
		}
	}
	lost, dups, err := account(survivor, "bench-failover", []string{"f0-0", "never-published"})
	if err != nil || lost != 1 || dups != 0 {
		t.Fatalf("account with a dropped event: lost=%d dups=%d err=%v", lost, dups, err)
	}
}

func mustReceiver(t testing.TB, cfg ReceiverConfig) *Receiver {
	t.Helper()
	r, err := StartReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRunEveryScenario runs every scenario with tiny sizes through Run and
// checks each result is well-formed.
func TestRunEveryScenario(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Clients: 4, Batch: 10, Payload: 64, Duration: 800 * time.Millisecond,
		Rate: 200, Subs: []int{1, 3}, Deliveries: 300, OrderedSubs: 2, OrderedEvents: 30, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	names := map[string]Result{}
	for _, r := range res {
		names[r.Name] = r
		if r.Throughput <= 0 || r.Unit == "" || r.Lost != 0 || r.Params == nil {
			t.Errorf("%s: not well-formed: %+v", r.Name, r)
		}
	}
	for _, n := range []string{"baseline-http", "baseline-fsync", "publish", "publish-batch", "deliver-1", "deliver-3", "deliver-live", "deliver-ordered-2", "latency", "failover"} {
		if _, ok := names[n]; !ok {
			t.Fatalf("no %s result in %v", n, out.String())
		}
	}
	if d := names["deliver-3"]; d.Deliveries != 3*d.Events || d.Ratio <= 0 || d.Errors != 0 {
		t.Fatalf("deliver-3: %+v", d)
	}
	if d := names["deliver-live"]; d.Deliveries != d.Events || d.Events != 300 || d.Ratio <= 0 || d.Errors != 0 || d.Duplicates != 0 {
		t.Fatalf("deliver-live: %+v", d)
	}
	if l := names["latency"]; l.Deliveries != l.Events || l.P99 <= 0 || l.E2EMax <= 0 {
		t.Fatalf("latency: %+v", l)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil || strings.Count(table.String(), "\n") != len(res)+1 {
		t.Fatalf("table:\n%s", table.String())
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

// TestScale: the scale scenario fills the store to each checkpoint and
// measures there; it runs only when named.
func TestScale(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Nodes: 1, Scenarios: []string{"scale"}, ScaleCheckpoints: []int{2000, 6000},
		Payload: 64, Duration: 300 * time.Millisecond, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res) != 2 || res[0].Name != "scale-2k" || res[1].Name != "scale-6k" {
		t.Fatalf("results: %+v", res)
	}
	for i, r := range res {
		in := toInt(r.Params["events_in_log"])
		if in < int64([]int{2000, 6000}[i]) || r.Throughput <= 0 || r.P99 <= 0 || toInt(r.Params["reads"]) == 0 || toInt(r.Params["data_dir_bytes"]) == 0 ||
			toInt(r.Params["events_db_bytes"]) == 0 || toInt(r.Params["events_db_bytes"]) >= toInt(r.Params["data_dir_bytes"]) ||
			toInt(r.Params["quiet_snapshot_ns"]) <= 0 {
			t.Fatalf("%s: %+v", r.Name, r)
		}
	}
	if toInt(res[1].Params["events_in_log"]) <= toInt(res[0].Params["events_in_log"]) || !strings.Contains(out.String(), "scale-6k") {
		t.Fatalf("the second stage did not grow the log:\n%s", out.String())
	}
	if _, err := Run(context.Background(), Options{Dir: t.TempDir(), Scenarios: []string{"scalee"}}); err == nil || !strings.Contains(err.Error(), "scale") {
		t.Fatalf("unknown scenario: %v", err)
	}
}

// TestDeliverReportsLostEvents: a receiver that answers 204 without
// recording (a delivery lost on the way) must show up as lost, not hang
// the run or count as delivered.
func TestDeliverReportsLostEvents(t *testing.T) {
	c := startCluster(t, 1)
	recv := mustReceiver(t, ReceiverConfig{Drop: 2})
	r, err := Deliver(context.Background(), DeliverConfig{Target: c.LeaderAddr(), Receiver: recv, Events: 50, Payload: 32, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lost != 2 || r.Deliveries != 48 {
		t.Fatalf("lost %d deliveries %d, want 2 and 48", r.Lost, r.Deliveries)
	}
	// And a flaky receiver costs retries, not events.
	flaky := mustReceiver(t, ReceiverConfig{FailRate: 0.3})
	r, err = Deliver(context.Background(), DeliverConfig{Target: c.LeaderAddr(), Store: "flaky", Receiver: flaky, Events: 100, Payload: 32, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lost != 0 || r.Deliveries != 100 || flaky.Stats().Failed == 0 {
		t.Fatalf("flaky receiver: %+v %+v", r, flaky.Stats())
	}
	// The leader's metrics say what the runs did.
	var leader *node.Node
	for _, n := range c.Nodes {
		if n.IsLeader() {
			leader = n
		}
	}
	rec := httptest.NewRecorder()
	leader.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metric := func(name string, labels ...string) float64 {
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			all := true
			for _, l := range labels {
				all = all && strings.Contains(line, l)
			}
			if all {
				v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				return v
			}
		}
		return -1
	}
	if v := metric("herald_deliveries_total", `store="flaky"`, `outcome="failed"`); v < float64(flaky.Stats().Failed) {
		t.Errorf("herald_deliveries_total{store=flaky,outcome=failed} = %v, the receiver failed %d", v, flaky.Stats().Failed)
	}
	if v := metric("herald_deliveries_total", `store="flaky"`, `outcome="succeeded"`); v < 100 {
		t.Errorf("herald_deliveries_total{store=flaky,outcome=succeeded} = %v, want >= 100", v)
	}
	if v := metric("herald_events_published_total", `store="flaky"`); v != 100 {
		t.Errorf("herald_events_published_total{store=flaky} = %v, want 100", v)
	}
	if v := metric("herald_publish_entry_events_count"); v < 1 {
		t.Errorf("herald_publish_entry_events_count = %v", v)
	}
}
