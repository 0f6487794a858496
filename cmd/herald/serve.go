package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "herald-data", "data directory")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP API listen address")
	httpAdv := fs.String("http-advertise", "", "HTTP address other nodes use (default: the listen address)")
	raftAddr := fs.String("raft", "127.0.0.1:8081", "Raft listen address")
	raftAdv := fs.String("raft-advertise", "", "Raft address peers dial (default: the listen address)")
	nodeID := fs.String("node-id", "", "node id (default: kept in DATA/node-id, generated on first start)")
	bootstrap := fs.Bool("bootstrap", false, "form a new single-node cluster if DATA holds none (implied when --join is not given)")
	join := fs.String("join", "", "comma-separated HTTP addresses of running members to join through (first start only)")
	nonVoter := fs.Bool("non-voter", false, "join as a non-voting member (a read replica); with --join")
	insecure := fs.Bool("insecure", false, "allow non-loopback listen addresses without authentication")
	raftTLS := addTLSFlags(fs, "raft-", "mutual TLS for Raft")
	httpTLS := addTLSFlags(fs, "", "HTTPS for the API and node-to-node calls")
	hbTimeout := fs.Duration("heartbeat-timeout", 0, "Raft heartbeat timeout (default 500ms)")
	elTimeout := fs.Duration("election-timeout", 0, "Raft election timeout (default 500ms)")
	leaseTimeout := fs.Duration("leader-lease-timeout", 0, "Raft leader lease timeout (default 250ms)")
	retAge := fs.Duration("retention-max-age", 0, "default retention: remove events older than this (0: keep; stores may set their own)")
	retEvents := fs.Uint64("retention-max-events", 0, "default retention: keep at most this many events per store (0: no limit)")
	retEvery := fs.Duration("retention-interval", time.Minute, "how often the leader applies retention")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := envFlags(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	joins := splitList(*join)
	if *bootstrap && len(joins) > 0 {
		return errors.New("--bootstrap and --join are exclusive")
	}
	raftTLSCfg, err := raftTLS.config("raft-", true)
	if err != nil {
		return err
	}
	httpTLSCfg, err := httpTLS.config("", false)
	if err != nil {
		return err
	}
	id, err := resolveNodeID(*data, *nodeID)
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{
		ID:                 id,
		DataDir:            *data,
		HTTPAddr:           *httpAddr,
		HTTPAdvertise:      *httpAdv,
		RaftAddr:           *raftAddr,
		RaftAdvertise:      *raftAdv,
		Bootstrap:          len(joins) == 0,
		Join:               joins,
		NonVoter:           *nonVoter,
		Insecure:           *insecure,
		RaftTLS:            raftTLSCfg,
		HTTPTLS:            httpTLSCfg,
		Logger:             logger,
		UserAgent:          userAgent(),
		HeartbeatTimeout:   *hbTimeout,
		ElectionTimeout:    *elTimeout,
		LeaderLeaseTimeout: *leaseTimeout,
		Retention:          hlog.Retention{MaxAge: *retAge, MaxEvents: *retEvents},
		RetentionInterval:  *retEvery,
	})
	if err != nil {
		return err
	}
	if err := n.Open(); err != nil {
		return err
	}
	scheme := "http"
	if httpTLSCfg != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "herald (version %s): node %s serving %s://%s (raft %s, data %s)\n", Version, id, scheme, n.HTTPAddr(), n.RaftAddr(), *data)
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return n.Shutdown(sctx) // a leader hands leadership over first
}

// resolveNodeID returns the node id: the one recorded in DATA/node-id, or
// the flag's (recorded on first start), or a generated one. A flag that
// disagrees with the recorded id is an error: Raft knows the node by it.
func resolveNodeID(dir, flagID string) (string, error) {
	path := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		rec := strings.TrimSpace(string(b))
		if flagID != "" && flagID != rec {
			return "", fmt.Errorf("--node-id %q, but %s records %q (a node keeps its id for life)", flagID, path, rec)
		}
		return rec, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	id := flagID
	if id == "" {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		id = "node-" + hex.EncodeToString(r[:])
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}
