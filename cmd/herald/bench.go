package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/herald-io/herald/bench"
	"github.com/spf13/cobra"
)

type benchOpts struct {
	scenario, target, subs, jsonOut, logLevel, apiKey, scaleAt, cpuProfile, memProfile string
	nodes, clients, batch, payload, inFlight, deliveries, orderedSubs, orderedEvents   int
	duration, recvLatency                                                              time.Duration
	rate, recvFail                                                                     float64
}

func newBenchCmd() *cobra.Command {
	var o benchOpts
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO]",
		Short: "measure publish and delivery throughput, latency and failover",
		Long: fmt.Sprintf(`Run benchmark scenarios on an in-process loopback cluster (or --target, a
running one) and print a table of the results.

Scenarios (default all, in this order): %s.
Run only when named: %s (fills a store to --scale-checkpoints events and
measures publish rate, read latency, snapshots and disk use at each).`, strings.Join(bench.Scenarios, ", "), strings.Join(bench.Optional, ", ")),
		Example: `herald bench --scenario deliver --subs 1,10 --json out.json
herald bench --target http://127.0.0.1:8080 --scenario publish,latency`,
		Args: nargs(0, 1, "at most one SCENARIO"),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.scenario, "scenario", "", "comma-separated scenarios to run (default all)")
	fs.IntVar(&o.nodes, "nodes", 3, "nodes in the in-process loopback cluster (1 or 3; ignored with --target)")
	fs.StringVar(&o.target, "target", "", "HTTP address of a running cluster (http://host:port); default: start one in-process")
	fs.StringVar(&o.apiKey, "api-key", "", "API `KEY` for --target (an admin key: the run creates subscriptions and stores)")
	markSecret(fs, "api-key")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients for publish")
	fs.IntVar(&o.batch, "batch", 100, "events per request for publish-batch")
	fs.IntVar(&o.payload, "payload", 512, "bytes of data per event")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "length of publish, publish-batch, latency and failover")
	fs.Float64Var(&o.rate, "rate", 1000, "offered events/s for latency")
	fs.StringVar(&o.subs, "subs", "1,10", "subscription fan-outs for deliver")
	fs.IntVar(&o.inFlight, "in-flight", 64, "max_in_flight of each unordered subscription")
	fs.IntVar(&o.deliveries, "deliveries", 50000, "deliveries per deliver run (events = deliveries / subscriptions)")
	fs.IntVar(&o.orderedSubs, "ordered-subs", 10, "subscriptions for deliver-ordered")
	fs.IntVar(&o.orderedEvents, "ordered-events", 2000, "events for deliver-ordered (each goes to every subscription)")
	fs.StringVar(&o.scaleAt, "scale-checkpoints", "100000,300000,1000000", "log sizes the scale scenario measures at")
	fs.DurationVar(&o.recvLatency, "receiver-latency", 0, "latency the local receiver adds to every answer")
	fs.Float64Var(&o.recvFail, "receiver-fail-rate", 0, "fraction of deliveries the local receiver answers with 503")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this `FILE`")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this `FILE` (go tool pprof; with the in-process cluster it covers the nodes, the receiver and the load)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write the heap profile of the moment the run's heap held the most live objects (sampled every second) to this `FILE` (go tool pprof -sample_index=inuse_space)")
	fs.StringVar(&o.logLevel, "log-level", "off", "log level of the in-process nodes (off, error, warn, info, debug); a killed leader makes the others log errors")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return o.run(cmd, args) }
	return cmd
}

func (o *benchOpts) run(cmd *cobra.Command, positional []string) error {
	ctx, stdout := cmd.Context(), cmd.OutOrStdout()
	scenarios := append(positional, splitList(o.scenario)...)
	if len(scenarios) == 1 && scenarios[0] == "all" {
		scenarios = nil
	}
	var fanouts []int
	for _, s := range splitList(o.subs) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return usagef("%s: %q is not a positive number", flagRef(cmd, "subs"), s)
		}
		fanouts = append(fanouts, n)
	}
	var checkpoints []int
	for _, s := range splitList(o.scaleAt) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || (len(checkpoints) > 0 && n <= checkpoints[len(checkpoints)-1]) {
			return usagef("%s: %q is not a positive number above the one before", flagRef(cmd, "scale-checkpoints"), s)
		}
		checkpoints = append(checkpoints, n)
	}
	if o.recvFail < 0 || o.recvFail >= 1 {
		return usagef("%s must be in [0, 1)", flagRef(cmd, "receiver-fail-rate"))
	}
	logger, err := newLogger(cmd.ErrOrStderr(), o.logLevel, "text")
	if err != nil {
		return err
	}
	progress := &bench.Progress{}
	stop := make(chan struct{})
	done := make(chan struct{})
	tty := isTerminal(stdout)
	interval := 5 * time.Second
	if tty {
		interval = 500 * time.Millisecond
	}
	go func() { defer close(done); progress.Report(stdout, tty, interval, stop) }()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var heap *peakHeap
	if o.memProfile != "" {
		heap = startPeakHeap(time.Second)
	}
	results, runErr := bench.Run(ctx, bench.Options{
		Target: o.target, APIKey: o.apiKey, Nodes: o.nodes, Scenarios: scenarios,
		Clients: o.clients, Batch: o.batch, Payload: o.payload, Duration: o.duration, Rate: o.rate,
		ScaleCheckpoints: checkpoints,
		Subs:             fanouts, InFlight: o.inFlight, Deliveries: o.deliveries, OrderedSubs: o.orderedSubs, OrderedEvents: o.orderedEvents,
		Receiver: bench.ReceiverConfig{Latency: o.recvLatency, FailRate: o.recvFail},
		Logger:   logger, Out: lineWriter{stdout, tty}, Progress: progress,
	})
	close(stop)
	<-done
	if heap != nil {
		peak, err := heap.writeTo(o.memProfile)
		if err != nil {
			return fmt.Errorf("memprofile: %w", err)
		}
		fmt.Fprintf(stdout, "heap profile at the peak of %.0f MB of live objects: %s\n", float64(peak)/1e6, o.memProfile)
	}
	if len(results) > 0 {
		fmt.Fprintln(stdout)
		bench.WriteTable(stdout, results)
	}
	if err := writeJSONFile(o.jsonOut, results); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	for _, r := range results {
		if r.Lost > 0 {
			return fmt.Errorf("%s: %d acknowledged events lost", r.Name, r.Lost)
		}
	}
	return nil
}

// lineWriter clears the progress line before a result line on a terminal.
type lineWriter struct {
	w   io.Writer
	tty bool
}

func (l lineWriter) Write(p []byte) (int, error) {
	if l.tty {
		io.WriteString(l.w, "\r\033[K")
	}
	return l.w.Write(p)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func writeJSONFile(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
