package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/herald-io/herald/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	scenario := "all"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		scenario, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: herald bench [publish|publish-batch|latency|deliver|deliver-latency|failover|all] [flags]")
		fs.PrintDefaults()
	}
	nodes := fs.Int("nodes", 3, "nodes in the in-process loopback cluster (ignored with --target)")
	target := fs.String("target", "", "comma-separated HTTP addresses of a running cluster (default: start one in-process)")
	clients := fs.Int("clients", 64, "concurrent clients")
	batch := fs.Int("batch", 100, "events per request for publish-batch")
	payload := fs.Int("payload", 512, "bytes of data per event")
	duration := fs.Duration("duration", 10*time.Second, "length of each scenario")
	rate := fs.Float64("rate", 1000, "offered events/s for latency")
	subs := fs.Int("subs", 1, "subscriptions for deliver and deliver-latency (each gets every event)")
	inFlight := fs.Int("in-flight", 64, "max_in_flight of each subscription for deliver")
	events := fs.Int("events", 50000, "backlog of events delivered by deliver (divided among --subs)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	logLevel := fs.String("log-level", "error", "log level of the in-process nodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var scenarios []string
	switch scenario {
	case "all":
		scenarios = []string{"publish", "publish-batch", "latency", "deliver", "deliver-latency"}
	case "publish", "publish-batch", "latency", "deliver", "deliver-latency", "failover":
		scenarios = []string{scenario}
	default:
		return fmt.Errorf("unknown scenario %q (publish, publish-batch, latency, deliver, deliver-latency, failover, all)", scenario)
	}

	targets := splitList(*target)
	if scenario == "failover" && len(targets) > 0 {
		return errors.New("failover kills a node of an in-process cluster; it cannot use --target")
	}
	var cluster *bench.Cluster
	if len(targets) == 0 {
		logger, err := newLogger(stderr, *logLevel, "text")
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "herald-bench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(stdout, "starting a %d-node loopback cluster in %s\n", *nodes, dir)
		c, err := bench.StartCluster(ctx, dir, *nodes, logger)
		if err != nil {
			return err
		}
		defer c.Close()
		cluster = c
		leader := c.LeaderAddr()
		if leader == "" {
			return errors.New("no leader")
		}
		targets = []string{leader}
	}

	if scenario == "failover" {
		r, err := bench.Failover(ctx, cluster, *clients, *payload, *duration/2, *duration/2)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, r)
		if r.Lost > 0 || r.Duplicates > 0 {
			return fmt.Errorf("%d acknowledged events lost, %d stored twice", r.Lost, r.Duplicates)
		}
		return writeJSON(*jsonOut, r)
	}
	var results []any
	for _, s := range scenarios {
		if s == "deliver" || s == "deliver-latency" {
			dc := bench.DeliverConfig{Target: targets[0], Store: "bench-" + s, Subscriptions: *subs, MaxInFlight: *inFlight,
				Payload: *payload, Events: *events / max(*subs, 1)}
			if s == "deliver-latency" {
				dc.Rate, dc.Duration = *rate, *duration
			}
			r, err := bench.Deliver(ctx, dc)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, r)
			results = append(results, r)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		cfg := bench.PublishConfig{Targets: targets, Clients: *clients, Payload: *payload, Duration: *duration, Store: "bench-" + s}
		switch s {
		case "publish-batch":
			cfg.Batch = *batch
			if cfg.Clients > 16 {
				cfg.Clients = 16 // a handful of batching producers is the realistic shape
			}
		case "latency":
			cfg.Rate = *rate
		}
		r, err := bench.Publish(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, r)
		if r.FirstError != "" {
			fmt.Fprintf(stdout, "  first error: %s\n", r.FirstError)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	return writeJSON(*jsonOut, results)
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
