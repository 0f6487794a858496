package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/herald-io/herald/node"
)

// runRecover is the way back from a lost quorum: with every node stopped,
// it rewrites a survivor's Raft configuration to the members listed in
// the peers file, e.g. [{"id":"n1","raft_addr":"127.0.0.1:8081"}].
func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of a stopped node (required)")
	peersFile := fs.String("peers", "", `JSON file listing the surviving members: [{"id":"n1","raft_addr":"127.0.0.1:8081"}] (required)`)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *peersFile == "" {
		return errors.New("--data and --peers are required")
	}
	logger, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*peersFile)
	if err != nil {
		return err
	}
	var peers []node.Peer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&peers); err != nil {
		return fmt.Errorf("%s: %w", *peersFile, err)
	}
	if err := node.Recover(*data, peers, logger); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recovered %s: configuration is now %d member(s); start the node(s) with herald serve\n", *data, len(peers))
	return nil
}
