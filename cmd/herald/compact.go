package main

import (
	"fmt"
	"path/filepath"

	hlog "github.com/herald-io/herald/log"
	"github.com/spf13/cobra"
)

// newCompactCmd shrinks a stopped node's event log file: retention frees
// pages that bbolt reuses, and this gives them back to the file system.
func newCompactCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:         "compact --data DIR",
		Short:       "shrink a stopped node's event log file (after retention)",
		Annotations: map[string]string{annNode: "1", annUsage: "--data DIR"},
		Example: `herald compact --data d1
# compacted d1/events.db: 41943040 -> 1048576 bytes`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&data, "data", "", "data `DIR` of a stopped node (required)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "data"); err != nil {
			return err
		}
		path := filepath.Join(data, "events.db")
		before, after, err := hlog.CompactFile(path)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "compacted %s: %d -> %d bytes\n", path, before, after)
		return err
	}
	return cmd
}
