package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenarios, in the order Run runs them: all of them by default.
var Scenarios = []string{"baseline", "publish", "publish-batch", "deliver", "deliver-live", "deliver-ordered", "latency", "failover"}

// Optional scenarios run only when named: scale fills a store to millions
// of events (minutes, gigabytes).
var Optional = []string{"scale"}

// Options configure Run. Zero values take the defaults, which finish all
// scenarios in about a minute on a 2-core machine.
type Options struct {
	// Target is a running cluster's HTTP address (host:port or
	// http://host:port); empty starts a loopback cluster of Nodes nodes in
	// this process.
	Target string
	// APIKey is sent with every request to Target (the in-process
	// cluster runs without authentication).
	APIKey string
	Nodes  int    // default 3
	Dir    string // cluster data and the fsync baseline (default a temp dir)

	Scenarios []string // default all (failover needs an in-process cluster)

	Clients  int           // publish clients (default 64)
	Batch    int           // events per publish-batch request (default 100)
	Payload  int           // bytes of data per event (default 512)
	Duration time.Duration // publish, publish-batch, latency; failover's load (default 8s)
	Rate     float64       // latency's offered load (default 1,000/s)

	Subs          []int // deliver fan-outs (default 1 and 10)
	InFlight      int   // max_in_flight of unordered subscriptions (default 64)
	Deliveries    int   // deliveries per deliver run (default 50,000)
	OrderedSubs   int   // deliver-ordered subscriptions (default 10)
	OrderedEvents int   // events of deliver-ordered (default 2,000; each goes to every subscription)

	// ScaleCheckpoints are the log sizes the scale scenario measures at
	// (default 100,000, 300,000 and 1,000,000).
	ScaleCheckpoints []int

	Receiver ReceiverConfig
	Logger   *slog.Logger // the in-process nodes' logger
	Out      io.Writer    // one line per finished scenario (default io.Discard)
	Progress *Progress    // counters for a progress line (optional)
}

func (o *Options) defaults() {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	if o.Clients <= 0 {
		o.Clients = 64
	}
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Payload <= 0 {
		o.Payload = 512
	}
	if o.Duration <= 0 {
		o.Duration = 8 * time.Second
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if len(o.Subs) == 0 {
		o.Subs = []int{1, 10}
	}
	if o.InFlight <= 0 {
		o.InFlight = 64
	}
	if o.Deliveries <= 0 {
		o.Deliveries = 50000
	}
	if o.OrderedSubs <= 0 {
		o.OrderedSubs = 10
	}
	if o.OrderedEvents <= 0 {
		o.OrderedEvents = 2000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
}

// Run runs the selected scenarios and returns their results (also those
// finished before an error).
func Run(ctx context.Context, o Options) ([]Result, error) {
	o.defaults()
	want := map[string]bool{}
	for _, s := range o.Scenarios {
		known := false
		for _, k := range append(Scenarios[:len(Scenarios):len(Scenarios)], Optional...) {
			known = known || k == s
		}
		if !known {
			return nil, fmt.Errorf("bench: unknown scenario %q (%s)", s, strings.Join(append(Scenarios[:len(Scenarios):len(Scenarios)], Optional...), ", "))
		}
		want[s] = true
	}
	target := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(o.Target, "http://"), "https://"), "/")
	if want["failover"] && target != "" {
		return nil, errors.New("bench: failover kills a node of an in-process cluster; it cannot run with a target")
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "herald-bench-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var cluster *Cluster
	if target == "" {
		fmt.Fprintf(o.Out, "starting a %d-node loopback cluster in %s\n", o.Nodes, dir)
		c, err := StartCluster(ctx, dir, o.Nodes, o.Logger)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		cluster = c
		if target = c.LeaderAddr(); target == "" {
			return nil, errors.New("bench: no leader")
		}
	}
	recv, err := StartReceiver(o.Receiver)
	if err != nil {
		return nil, err
	}
	defer recv.Close()
	o.Progress.Receiver = recv

	var results []Result
	var httpBase, fsyncBase float64
	add := func(r Result) {
		switch {
		case strings.HasPrefix(r.Name, "deliver") && httpBase > 0:
			r.Ratio = r.Throughput / httpBase
		case strings.HasPrefix(r.Name, "publish") && fsyncBase > 0:
			r.Ratio = r.Throughput / fsyncBase
		}
		results = append(results, r)
		fmt.Fprintln(o.Out, r)
	}
	step := func(name string) bool {
		if !want[name] || ctx.Err() != nil {
			return false
		}
		o.Progress.Scenario.Store(name)
		return true
	}
	if step("baseline") {
		r, err := BaselineHTTP(ctx, recv, 64, o.Payload, 3*time.Second)
		if err != nil {
			return results, err
		}
		httpBase = r.Throughput
		add(r)
		if r, err = BaselineFsync(dir, time.Second); err != nil {
			return results, err
		}
		fsyncBase = r.Throughput
		add(r)
	}
	for _, name := range []string{"publish", "publish-batch"} {
		if !step(name) {
			continue
		}
		cfg := PublishConfig{Targets: []string{target}, APIKey: o.APIKey, Clients: o.Clients, Payload: o.Payload, Duration: o.Duration,
			Store: "bench-" + name, Progress: o.Progress}
		if name == "publish-batch" {
			cfg.Batch, cfg.Clients = o.Batch, min(o.Clients, 16) // a handful of batching producers
		}
		r, err := Publish(ctx, cfg)
		if err != nil {
			return results, err
		}
		add(r)
	}
	if step("deliver") {
		for _, s := range o.Subs {
			r, err := Deliver(ctx, DeliverConfig{Target: target, APIKey: o.APIKey, Store: fmt.Sprintf("bench-deliver-%d", s), Receiver: recv,
				Subscriptions: s, MaxInFlight: o.InFlight, Payload: o.Payload, Events: max(o.Deliveries/s, 2), Progress: o.Progress})
			if err != nil {
				return results, err
			}
			add(r)
		}
	}
	if step("deliver-live") {
		r, err := DeliverLive(ctx, LiveConfig{Target: target, APIKey: o.APIKey, Receiver: recv, Events: o.Deliveries, Batch: o.Batch,
			Clients: min(o.Clients, 16), MaxInFlight: o.InFlight, Payload: o.Payload, Progress: o.Progress})
		if err != nil {
			return results, err
		}
		add(r)
	}
	if step("deliver-ordered") {
		r, err := Deliver(ctx, DeliverConfig{Target: target, APIKey: o.APIKey, Store: "bench-deliver-ordered", Receiver: recv, Ordered: true,
			Subscriptions: o.OrderedSubs, Payload: o.Payload, Events: o.OrderedEvents, Progress: o.Progress})
		if err != nil {
			return results, err
		}
		add(r)
	}
	if step("latency") {
		r, err := Latency(ctx, LatencyConfig{Target: target, APIKey: o.APIKey, Receiver: recv, Rate: o.Rate, Duration: o.Duration,
			Payload: o.Payload, Progress: o.Progress})
		if err != nil {
			return results, err
		}
		add(r)
	}
	if step("scale") {
		var dataDir string
		var snapshot func() error
		if cluster != nil {
			dataDir, snapshot = cluster.Nodes[0].DataDir(), cluster.Nodes[0].Snapshot
		}
		rs, err := Scale(ctx, ScaleConfig{Target: target, APIKey: o.APIKey, Checkpoints: o.ScaleCheckpoints, Payload: o.Payload,
			Window: min(o.Duration, 3*time.Second), DataDir: dataDir, Snapshot: snapshot, Progress: o.Progress})
		for _, r := range rs {
			results = append(results, r)
			fmt.Fprintln(o.Out, ScaleLine(r))
		}
		if err != nil {
			return results, err
		}
	}
	if step("failover") {
		r, err := Failover(ctx, cluster, FailoverConfig{Clients: 16, Payload: o.Payload, Before: o.Duration * 3 / 8,
			After: o.Duration * 5 / 8, Receiver: recv, Progress: o.Progress})
		add(r)
		if err != nil {
			return results, err
		}
	}
	return results, ctx.Err()
}

// WriteTable prints results as an aligned table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tthroughput\tunit\tx baseline\tp50\tp99\tack→recv p50\tack→recv p99\tgap\tcpu/unit\tlost\tdup\terrors\t")
	dur := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return rd(d).String()
	}
	for _, r := range results {
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		gap := "-"
		if r.PublishGap > 0 || r.DeliveryGap > 0 {
			gap = fmt.Sprintf("%v/%v", r.PublishGap.Round(time.Millisecond), r.DeliveryGap.Round(time.Millisecond))
		}
		e50, e99 := dur(r.E2EP50), dur(r.E2EP99)
		if r.Name == "latency" {
			e50, e99 = rd(r.E2EP50).String(), rd(r.E2EP99).String()
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", r.Name, r.Throughput, r.Unit, ratio,
			dur(r.P50), dur(r.P99), e50, e99, gap, dur(r.CPUPerUnit), r.Lost, r.Duplicates, r.Errors)
	}
	return tw.Flush()
}
