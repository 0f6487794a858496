package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/herald-io/herald/api"
)

// scrape fetches a node's /metrics, checks it with promlint (the linter
// of promtool check metrics) and, when Debian's prometheus package is
// installed (.ci/run installs it), with promtool itself, and parses it.
func scrape(t *testing.T, n *testNode) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	problems, err := promlint.New(bytes.NewReader(raw)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = bytes.NewReader(raw)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of family name's series whose labels include
// labels ("k=v"), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.Label {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics: after publishing and delivering, every family of
// docs/api.md#metrics is there with the values the run implies, the
// exposition is lint-clean, and a subscription's series go with it.
func TestMetrics(t *testing.T) {
	nodes := mustStartCluster(t, 2, nil)
	l := leaderOf(t, nodes)
	f := nodes[0]
	if f == l {
		f = nodes[1]
	}
	c := clientOf(t, l)
	ctx := context.Background()
	recv := newCountingReceiver(t)
	sub, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := 0; i < n; i++ {
		if _, err := c.Publish(ctx, "shop", api.NewEvent{Type: "order.created", Data: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "every event delivered and the cursor at the end", func() bool {
		s, err := c.Subscription(ctx, "shop", sub.ID, nil)
		return recv.distinct() == n && err == nil && s.Cursor == n
	})
	if err := l.raft.Snapshot(); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, l)
	ff := scrape(t, f)
	// On a busy machine leadership may move during the test: what is
	// counted by whichever node leads (stored events, deliveries) is
	// summed over both.
	sum := func(name string, labels ...string) (float64, bool) {
		a, okA := value(fams, name, labels...)
		b, okB := value(ff, name, labels...)
		return a + b, okA || okB
	}
	summed := map[string]bool{"herald_events_published_total": true, "herald_deliveries_total": true,
		"herald_delivery_duration_seconds": true, "herald_publish_entry_events": true, "herald_raft_state": true}
	want := []struct {
		name   string
		labels []string
		ok     func(v float64) bool
		what   string
	}{
		{"herald_events_published_total", []string{"store=shop"}, func(v float64) bool { return v == n }, "10"},
		{"herald_publish_requests_total", []string{"code=201"}, func(v float64) bool { return v == n }, "10"},
		{"herald_publish_duration_seconds", nil, func(v float64) bool { return v == n }, "10 observations"},
		{"herald_publish_entry_events", nil, func(v float64) bool { return v >= 1 }, "an entry"},
		{"herald_deliveries_total", []string{"store=shop", "outcome=succeeded"}, func(v float64) bool { return v >= n }, ">= 10"},
		{"herald_delivery_duration_seconds", nil, func(v float64) bool { return v >= n }, ">= 10 observations"},
		{"herald_delivery_lag_events", []string{"store=shop", "subscription=" + sub.ID}, func(v float64) bool { return v == 0 }, "0"},
		{"herald_delivery_lag_seconds", []string{"store=shop", "subscription=" + sub.ID}, func(v float64) bool { return v == 0 }, "0"},
		{"herald_delivery_retry_pending", []string{"subscription=" + sub.ID}, func(v float64) bool { return v == 0 }, "0"},
		{"herald_subscription_breaker_open", []string{"subscription=" + sub.ID}, func(v float64) bool { return v == 0 }, "0"},
		{"herald_deliveries_in_flight", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"herald_raft_state", nil, func(v float64) bool { return v == 2 }, "2 (one leader, one follower)"},
		{"herald_raft_term", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"herald_raft_commit_index", nil, func(v float64) bool { return v > n }, "> 10"},
		{"herald_raft_applied_index", nil, func(v float64) bool { return v > n }, "> 10"},
		{"herald_fsm_apply_duration_seconds", nil, func(v float64) bool { return v >= 1 }, "observations"},
		{"herald_snapshot_duration_seconds", nil, func(v float64) bool { return v >= 1 }, "the snapshot"},
		{"herald_log_events", []string{"store=shop"}, func(v float64) bool { return v == n }, "10"},
		{"herald_db_size_bytes", []string{"file=events.db"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"herald_db_size_bytes", []string{"file=" + raftLogFile()}, func(v float64) bool { return v > 0 }, "> 0"},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, w := range want {
		v, ok := value(fams, w.name, w.labels...)
		if summed[w.name] {
			v, ok = sum(w.name, w.labels...)
		}
		if !ok || !w.ok(v) {
			t.Errorf("%s%v = %v (present %v), want %s", w.name, w.labels, v, ok, w.what)
		}
	}
	// The follower (whichever it is now): how long since it heard from
	// the leader.
	follower, leaderID := ff, l.ID()
	if v, _ := value(ff, "herald_raft_state"); v == 2 {
		follower, leaderID = fams, f.ID()
	}
	if v, ok := value(follower, "herald_raft_last_contact_seconds", "peer="+leaderID); !ok || v < 0 || v > 30 {
		t.Errorf("follower's herald_raft_last_contact_seconds{peer=%s} %v %v", leaderID, v, ok)
	}
	// A deleted subscription's series go.
	if err := c.DeleteSubscription(ctx, "shop", sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := value(scrape(t, l), "herald_delivery_lag_events", "subscription="+sub.ID); ok {
		t.Error("a deleted subscription still has a lag series")
	}
}

// TestGrafanaDashboardNamesRealFamilies: every metric the dashboard
// (docs/grafana/herald.json) queries is one the node exposes.
func TestGrafanaDashboardNamesRealFamilies(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana/herald.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	nodes := mustStartCluster(t, 2, nil)
	// Every family has a series once a subscription exists and an event
	// was published and delivered (the leader's last contact: on the
	// follower).
	recv := newCountingReceiver(t)
	c := clientOf(t, leaderOf(t, nodes))
	sub, err := c.CreateSubscription(context.Background(), "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(context.Background(), "shop", api.NewEvent{Type: "t", Data: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	// The attempt is in the delivery log once the worker has settled it
	// (and counted it): the receiver's side is seen earlier.
	waitFor(t, 20*time.Second, "the attempt recorded", func() bool {
		page, err := c.Deliveries(context.Background(), "shop", sub.ID, api.DeliveryQuery{})
		return err == nil && len(page.Deliveries) > 0
	})
	fams := scrape(t, nodes[0])
	for k, v := range scrape(t, nodes[1]) {
		fams[k] = v
	}
	name := regexp.MustCompile(`herald_[a-z_]+`)
	seen := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if fams[base] == nil && fams[m] == nil {
					t.Errorf("panel %q queries %s, which the node does not expose", p.Title, m)
				}
				seen++
			}
		}
	}
	if len(d.Panels) < 10 || seen < 15 {
		t.Fatalf("%d panels, %d metric references", len(d.Panels), seen)
	}
}
