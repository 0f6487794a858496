package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/herald-io/herald/node"
	"github.com/spf13/cobra"
)

// newRecoverCmd is the way back from a lost quorum: with every node
// stopped, it rewrites a survivor's Raft configuration to the members
// listed in the peers file, e.g. [{"id":"n1","raft_addr":"127.0.0.1:8081"}].
func newRecoverCmd() *cobra.Command {
	var data, peersFile, logLevel string
	cmd := &cobra.Command{
		Use:   "recover --data DIR --peers FILE",
		Short: "after losing quorum: set a stopped node's members",
		Long: `After losing a majority of the nodes for good: with every survivor stopped,
rewrite this node's Raft configuration to the members listed in FILE, e.g.
[{"id":"n1","raft_addr":"127.0.0.1:8081"}]. It first applies the node's
whole Raft log to its event log. Then start the node(s) with herald serve.`,
		Annotations: map[string]string{annNode: "1", annUsage: "--data DIR --peers FILE"},
		Example: `echo '[{"id":"n1","raft_addr":"127.0.0.1:8081"}]' > peers.json
herald recover --data d1 --peers peers.json
# recovered d1: configuration is now 1 member(s); start the node(s) with herald serve`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&data, "data", "", "data `DIR` of a stopped node (required)")
	cmd.Flags().StringVar(&peersFile, "peers", "", "JSON `FILE` listing the surviving members (required)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "data", "peers"); err != nil {
			return err
		}
		logger, err := newLogger(cmd.ErrOrStderr(), logLevel, "text")
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(peersFile)
		if err != nil {
			return err
		}
		var peers []node.Peer
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&peers); err != nil {
			return fmt.Errorf("%s: %w", peersFile, err)
		}
		if err := node.Recover(data, peers, logger); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "recovered %s: configuration is now %d member(s); start the node(s) with herald serve\n", data, len(peers))
		return err
	}
	return cmd
}
