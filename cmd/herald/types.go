package main

import (
	"fmt"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
)

func newTypesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "types STORE",
		Short: "list the event types of a store's events, with counts",
		Long: `List the event types of a store's events, by name: how many of its events
have each type (deduplicated publishes are not counted; events retention
removed no longer count), and the seq and timestamp of the newest one.

At most 1,000 types per store are tracked; past that new types are not
listed, and the command says so on stderr.`,
		Example: `herald types shop-1
herald types shop-1 -o json`,
		Args: nargs(1, 1, "STORE"),
	}
	cons := consistencyFlag(cmd.Flags())
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		st, err := c.Types(cmd.Context(), args[0], queryOpts(cons))
		if err != nil {
			return err
		}
		if k.json() {
			if st.Types == nil {
				st.Types = []api.EventType{}
			}
			return writeJSON(cmd.OutOrStdout(), st)
		}
		if len(st.Types) == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "store %s holds no events\n", st.Store)
		} else {
			tw := newTable(cmd.OutOrStdout(), "TYPE", "COUNT", "LAST_SEQ", "LAST_SEEN")
			for _, t := range st.Types {
				row(tw, t.Type, t.Count, t.LastSeq, fmtTime(t.LastSeenAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if st.Truncated {
			fmt.Fprintf(cmd.ErrOrStderr(), "truncated: store %s holds events of types not listed (at most 1,000 types per store are tracked)\n", st.Store)
		}
		return nil
	}
	return cmd
}
