package main

import (
	"fmt"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "inspect or change the cluster's members",
		Long: `Inspect or change the cluster's members. --addr is any member: requests that
only the leader can serve are relayed to it.`,
	}
	cmd.AddCommand(newClusterStatusCmd(), newClusterJoinCmd(), newClusterRemoveCmd(), newClusterTransferCmd(), newClusterTokenCmd(), newClusterCACmd())
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show the members, their state and the leader",
		Long: `Show the members, their Raft and HTTP addresses, state and suffrage, and the
leader: the leader's view (a follower relays the request), or with
--consistency local the answering node's own.`,
		Example: `herald cluster status --addr 127.0.0.1:8090`,
		Args:    nargs(0, 0, ""),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		cl, err := c.Cluster(cmd.Context(), queryOpts(cons))
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			return writeJSON(w, cl)
		}
		leader := "none known"
		if cl.Leader != "" {
			leader = cl.Leader
			if cl.LeaderHTTPAddr != "" {
				leader += " (" + cl.LeaderHTTPAddr + ")"
			}
		}
		fmt.Fprintf(w, "leader %s; answered by %s; commit index %d, applied index %d\n\n", leader, cl.ID, cl.CommitIndex, cl.AppliedIndex)
		tw := newTable(w, "ID", "STATE", "SUFFRAGE", "RAFT_ADDR", "HTTP_ADDR")
		for _, n := range cl.Nodes {
			row(tw, n.ID, n.State, n.Suffrage, orDash(n.RaftAddr), orDash(n.HTTPAddr))
		}
		return tw.Flush()
	}
	return cmd
}

func newClusterJoinCmd() *cobra.Command {
	var id, raftAddr, httpAddr string
	var nonVoter bool
	cmd := &cobra.Command{
		Use:   "join --id ID --raft-addr ADDR --http-addr ADDR [--non-voter]",
		Short: "add a member (herald serve --join does this itself)",
		Long: `Add a member to the cluster, or update a known member's addresses; a
non-voter receives the log and serves reads but never votes or leads
(joining it again without --non-voter promotes it). herald serve --join
does this itself; this command is for nodes started without --join.`,
		Annotations: map[string]string{annUsage: "--id ID --raft-addr ADDR --http-addr ADDR [--non-voter]"},
		Example:     `herald cluster join --id n4 --raft-addr 127.0.0.1:8111 --http-addr 127.0.0.1:8110`,
		Args:        nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&id, "id", "", "the new member's node `ID`")
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "its Raft address, `HOST:PORT`")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "its HTTP address, `HOST:PORT`")
	cmd.Flags().BoolVar(&nonVoter, "non-voter", false, "join as a non-voting member (a read replica)")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "id", "raft-addr", "http-addr"); err != nil {
			return err
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.Join(cmd.Context(), api.JoinRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr, Voter: api.Ptr(!nonVoter)})
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		kind := "voter"
		if !res.Voter {
			kind = "non-voter"
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "joined %s as a %s (raft %s, http %s)\n", res.ID, kind, res.RaftAddr, res.HTTPAddr)
		return err
	}
	return cmd
}

func newClusterRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "remove a member (the leader refuses to remove itself: transfer first)",
		Example: `herald cluster remove n3
# removed n3`,
		Args: nargs(1, 1, "NODE_ID"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.RemoveNode(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", res.Removed)
		return err
	}
	return cmd
}

func newClusterTransferCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transfer [NODE_ID]",
		Short: "hand leadership to NODE_ID (default: any up-to-date voter)",
		Example: `herald cluster transfer n2
# leader is now n2`,
		Args: nargs(0, 1, "at most one NODE_ID"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		to := ""
		if len(args) == 1 {
			to = args[0]
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.TransferLeader(cmd.Context(), to)
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "leader is now %s\n", res.Leader)
		return err
	}
	return cmd
}
