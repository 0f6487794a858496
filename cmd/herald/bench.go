package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herald-io/herald/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var positional []string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		positional, args = []string{args[0]}, args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: herald bench [scenario] [flags]\n\nScenarios (default all, in this order): %s\n\n", strings.Join(bench.Scenarios, ", "))
		fs.PrintDefaults()
	}
	scenario := fs.String("scenario", "", "comma-separated scenarios to run (default all)")
	nodes := fs.Int("nodes", 3, "nodes in the in-process loopback cluster (1 or 3; ignored with --target)")
	target := fs.String("target", "", "HTTP address of a running cluster (http://host:port); default: start one in-process")
	clients := fs.Int("clients", 64, "concurrent clients for publish")
	batch := fs.Int("batch", 100, "events per request for publish-batch")
	payload := fs.Int("payload", 512, "bytes of data per event")
	duration := fs.Duration("duration", 8*time.Second, "length of publish, publish-batch, latency and failover")
	rate := fs.Float64("rate", 1000, "offered events/s for latency")
	subs := fs.String("subs", "1,10", "subscription fan-outs for deliver")
	inFlight := fs.Int("in-flight", 64, "max_in_flight of each unordered subscription")
	deliveries := fs.Int("deliveries", 50000, "deliveries per deliver run (events = deliveries / subscriptions)")
	orderedSubs := fs.Int("ordered-subs", 10, "subscriptions for deliver-ordered")
	orderedEvents := fs.Int("ordered-events", 2000, "events for deliver-ordered (each goes to every subscription)")
	recvLatency := fs.Duration("receiver-latency", 0, "latency the local receiver adds to every answer")
	recvFail := fs.Float64("receiver-fail-rate", 0, "fraction of deliveries the local receiver answers with 503")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	logLevel := fs.String("log-level", "off", "log level of the in-process nodes (off, error, warn, info, debug); a killed leader makes the others log errors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	scenarios := append(positional, splitList(*scenario)...)
	if len(scenarios) == 1 && scenarios[0] == "all" {
		scenarios = nil
	}
	var fanouts []int
	for _, s := range splitList(*subs) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("--subs: %q is not a positive number", s)
		}
		fanouts = append(fanouts, n)
	}
	if *recvFail < 0 || *recvFail >= 1 {
		return fmt.Errorf("--receiver-fail-rate must be in [0, 1)")
	}
	logger, err := newLogger(stderr, *logLevel, "text")
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
	results, runErr := bench.Run(ctx, bench.Options{
		Target: *target, Nodes: *nodes, Scenarios: scenarios,
		Clients: *clients, Batch: *batch, Payload: *payload, Duration: *duration, Rate: *rate,
		Subs: fanouts, InFlight: *inFlight, Deliveries: *deliveries, OrderedSubs: *orderedSubs, OrderedEvents: *orderedEvents,
		Receiver: bench.ReceiverConfig{Latency: *recvLatency, FailRate: *recvFail},
		Logger:   logger, Out: lineWriter{stdout, tty}, Progress: progress,
	})
	close(stop)
	<-done
	if len(results) > 0 {
		fmt.Fprintln(stdout)
		bench.WriteTable(stdout, results)
	}
	if err := writeJSON(*jsonOut, results); err != nil {
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

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
