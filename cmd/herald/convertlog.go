package main

import (
	"fmt"

	"github.com/herald-io/herald/node"
	"github.com/spf13/cobra"
)

// newConvertLogStoreCmd converts a stopped node's Raft log store (raft.db
// to wal/, or back), keeping the old one as a backup.
func newConvertLogStoreCmd() *cobra.Command {
	var data, logLevel string
	to := newEnum(node.RaftLogStoreWAL, node.RaftLogStoreWAL, node.RaftLogStoreBolt)
	cmd := &cobra.Command{
		Use:   "convert-log-store --data DIR [--to wal|bolt]",
		Short: "move a stopped node's Raft log to another store (raft.db to wal/)",
		Long: `With the node stopped, copy its Raft log and stable store (current term,
last vote) from the store it has into a new one: wal (DATA/wal/, the default
for new nodes) or bolt (DATA/raft.db, what earlier releases made). The copy
is written with fsync and compared with the old store entry by entry before
it replaces it; the old store is kept, renamed, as a backup (remove it once
the node has rejoined). Killed half-way, the node still starts on its old
store, and running the command again starts over; on a node that already
uses the store it does nothing. Then start the node with herald serve.`,
		Annotations: map[string]string{annNode: "1", annUsage: "--data DIR [--to wal|bolt]"},
		Example: `herald convert-log-store --data d1 --to wal
# converted d1 from bolt to wal: entries 1-20345 (20345), term 7; the old store is kept as d1/raft.db.bak-20261203T101112Z
# start the node with herald serve: it runs on wal from now on`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&data, "data", "", "data `DIR` of a stopped node (required)")
	cmd.Flags().Var(to, "to", "the store to convert to: wal or bolt")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "data"); err != nil {
			return err
		}
		logger, err := newLogger(cmd.ErrOrStderr(), logLevel, "text")
		if err != nil {
			return err
		}
		res, err := node.ConvertLogStore(data, to.val, logger)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if res.AlreadyDone {
			_, err = fmt.Fprintf(out, "%s already uses %s: nothing to do\n", data, res.To)
			return err
		}
		entries := "no entries"
		if res.Entries > 0 {
			entries = fmt.Sprintf("entries %d-%d (%d)", res.First, res.Last, res.Entries)
		}
		_, err = fmt.Fprintf(out, "converted %s from %s to %s: %s, term %d; the old store is kept as %s\nstart the node with herald serve: it runs on %s from now on\n",
			data, res.From, res.To, entries, res.CurrentTerm, res.Backup, res.To)
		return err
	}
	return cmd
}
