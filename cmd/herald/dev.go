package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/herald-io/herald/node"
	"github.com/spf13/cobra"
)

func newDevCmd() *cobra.Command {
	var (
		count, port  int
		data, logLvl string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run a loopback cluster in one process, for trying things out",
		Long: `Run a cluster of --nodes nodes on 127.0.0.1 in one process, for trying things
out; it prints each node's HTTP address and role. Ctrl-C stops it (and
removes the temporary data directory unless --data was given).`,
		Example: `herald dev --nodes 3
# herald dev: 3-node cluster, data in /tmp/herald-dev-123
#   n1  http://127.0.0.1:41001  (raft 127.0.0.1:41002, leader)
#   ...`,
		Args: nargs(0, 0, ""),
	}
	fs := cmd.Flags()
	fs.IntVar(&count, "nodes", 3, "number of nodes, 1-9")
	fs.StringVar(&data, "data", "", "data `DIR` (default: a temporary directory, removed on exit)")
	fs.IntVar(&port, "port", 0, "first HTTP `PORT`; node i uses port+2i for HTTP and port+2i+1 for Raft (default: free ports)")
	fs.StringVar(&logLvl, "log-level", "warn", "debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if count < 1 || count > 9 {
			return usagef("%s must be 1-9", flagRef(cmd, "nodes"))
		}
		stdout := cmd.OutOrStdout()
		logger, err := newLogger(cmd.ErrOrStderr(), logLvl, "text")
		if err != nil {
			return err
		}
		dir := data
		if dir == "" {
			if dir, err = os.MkdirTemp("", "herald-dev-*"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		ctx := cmd.Context()
		nodes, err := node.StartLocalCluster(ctx, node.LocalCluster{Dir: dir, Nodes: count, Port: port, Logger: logger,
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
		fmt.Fprintf(stdout, "try: HERALD_API_KEY=$(cat %s) herald publish demo store/order/created --data '{\"id\":1}' --addr http://%s\n",
			filepath.Join(nodes[0].DataDir(), node.AdminKeyFile), nodes[len(nodes)-1].HTTPAddr())
		fmt.Fprintln(stdout, "webhooks may reach loopback receivers (127.0.0.0/8, ::1): herald serve allows them only with --delivery-allow")
		fmt.Fprintln(stdout, "Ctrl-C stops the cluster.")
		<-ctx.Done()
		return nil
	}
	return cmd
}
