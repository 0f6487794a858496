package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	hlog "github.com/herald-io/herald/log"
)

// runCompact shrinks a stopped node's event log file: retention frees
// pages that bbolt reuses, and this gives them back to the file system.
func runCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of a stopped node (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" {
		return errors.New("--data is required")
	}
	before, after, err := hlog.CompactFile(filepath.Join(*data, "events.db"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %d -> %d bytes\n", filepath.Join(*data, "events.db"), before, after)
	return nil
}
