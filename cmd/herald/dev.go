package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/herald-io/herald/node"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("nodes", 3, "number of nodes")
	data := fs.String("data", "", "data directory (default: a temporary directory, removed on exit)")
	port := fs.Int("port", 0, "first HTTP port; node i uses port+2i for HTTP and port+2i+1 for Raft (default: free ports)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := envFlags(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 || *count > 9 {
		return fmt.Errorf("--nodes must be 1-9")
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	dir := *data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "herald-dev-*"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	nodes, err := node.StartLocalCluster(ctx, node.LocalCluster{Dir: dir, Nodes: *count, Port: *port, Logger: logger,
		Tweak: func(c *node.Config) { c.UserAgent = userAgent() }})
	for _, n := range nodes {
		defer n.Close()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "herald dev: %d-node cluster, data in %s\n", len(nodes), dir)
	for _, n := range nodes {
		role := "follower"
		if n.IsLeader() {
			role = "leader"
		}
		fmt.Fprintf(stdout, "  %s  http://%s  (raft %s, %s)\n", n.ID(), n.HTTPAddr(), n.RaftAddr(), role)
	}
	fmt.Fprintf(stdout, "try: curl -s -XPOST http://%s/v1/stores/demo/events -d '{\"type\":\"store/order/created\",\"data\":{\"id\":1}}'\n", nodes[len(nodes)-1].HTTPAddr())
	fmt.Fprintln(stdout, "Ctrl-C stops the cluster.")
	<-ctx.Done()
	return nil
}
