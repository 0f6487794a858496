package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-io/herald/internal/netguard"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node"
	"github.com/spf13/cobra"
)

// serveOpts are herald serve's flags. Their names and variables
// (HERALD_<FLAG>) are a contract: scripts, systemd units and
// systemtest/ start nodes with them.
type serveOpts struct {
	data, httpAddr, httpAdv, raftAddr, raftAdv, nodeID, join string
	joinToken                                                string
	corsOrigins                                              []string
	deliveryAllow, secretsKeyFile                            string
	maxSubs, maxWaiters                                      int
	accessLog, metricsPublic                                 bool
	metricsAddr                                              string
	bootstrap, nonVoter, noAuth                              bool
	raftTLS, httpTLS                                         tlsFlags
	hbTimeout, elTimeout, leaseTimeout                       time.Duration
	retAge, retEvery                                         time.Duration
	retEvents                                                uint64
	logLevel, logFormat                                      string
	raftLogStore                                             *enumValue
	snapshotBytes, trailingBytes                             *byteSize
}

func newServeCmd() *cobra.Command {
	var o serveOpts
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run a node (a single node in ./herald-data by default)",
		Long: `Run a node. Without --join, its first start bootstraps a new single-node
cluster in --data (never when --join is given); a restarted node rejoins
from its data dir alone. SIGINT or SIGTERM stop it gracefully (a leader
hands leadership over first).`,
		Example: `herald serve --node-id n1 --data d1 --http 127.0.0.1:8080 --raft 127.0.0.1:8081
herald serve --node-id n2 --data d2 --http 127.0.0.1:8090 --raft 127.0.0.1:8091 --join 127.0.0.1:8080 --join-token "$(herald cluster token | tail -1)"`,
		Annotations: map[string]string{annNode: "1"},
		Args:        nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.data, "data", "herald-data", "data directory")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "HTTP API listen address")
	fs.StringVar(&o.httpAdv, "http-advertise", "", "HTTP address other nodes use (default: the listen address)")
	fs.StringVar(&o.raftAddr, "raft", "127.0.0.1:8081", "Raft listen address")
	fs.StringVar(&o.raftAdv, "raft-advertise", "", "Raft address peers dial (default: the listen address)")
	fs.StringVar(&o.nodeID, "node-id", "", "node id (default: kept in DATA/node-id, generated on first start)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "form a new single-node cluster if DATA holds none (implied when --join is not given)")
	fs.StringVar(&o.join, "join", "", "comma-separated HTTP addresses of running members to join through (first start only)")
	fs.BoolVar(&o.nonVoter, "non-voter", false, "join as a non-voting member (a read replica); with --join")
	fs.StringVar(&o.joinToken, "join-token", "", "one-time token from herald cluster token: lets a new node obtain its certificate (with --join)")
	markSecret(fs, "join-token")
	fs.BoolVar(&o.noAuth, "no-auth", false, "turn API authentication off (only with a loopback --http: tests, benchmarks)")
	fs.StringVar(&o.deliveryAllow, "delivery-allow", "", "comma-separated `CIDRS` webhooks may reach although they are loopback, private or link-local (e.g. 10.1.0.0/16 for a LAN receiver, 127.0.0.0/8 for local development)")
	fs.StringVar(&o.secretsKeyFile, "secrets-key-file", "", "master key `FILE` of the secrets at rest (default DATA/secrets.key, made on first start; with --raft-tls-* every node needs the same file)")
	fs.IntVar(&o.maxSubs, "max-subscriptions-per-store", 100, "the most subscriptions a store may have")
	fs.IntVar(&o.maxWaiters, "max-waiting-reads", 4096, "the most reads that may long-poll this node at once (503 past it)")
	fs.StringSliceVar(&o.corsOrigins, "cors-origins", nil, "browser `ORIGINS` (https://app.example.com, or *) whose pages may call the API")
	o.raftTLS = addTLSFlags(fs, "raft-", "the operator's certificates for the cluster port (default: the cluster's own CA in DATA/tls)")
	o.httpTLS = addTLSFlags(fs, "", "HTTPS for the API and node-to-node calls")
	o.raftLogStore = newEnum("", node.RaftLogStoreWAL, node.RaftLogStoreBolt)
	fs.Var(o.raftLogStore, "raft-log-store", "Raft's log store: wal (DATA/wal/) or bolt (DATA/raft.db) (default: the one DATA holds, wal for a new one; change it with herald convert-log-store)")
	o.snapshotBytes, o.trailingBytes = newByteSize("256MiB"), newByteSize("256MiB")
	fs.Var(o.snapshotBytes, "snapshot-bytes", "take a Raft snapshot once this much log has been applied since the last (it copies nothing: metadata only)")
	fs.Var(o.trailingBytes, "trailing-bytes", "about how much Raft log to keep after a snapshot (at most 10,240 entries): a follower further behind is sent the whole event log")
	fs.DurationVar(&o.hbTimeout, "heartbeat-timeout", 0, "Raft heartbeat timeout (default 500ms)")
	fs.DurationVar(&o.elTimeout, "election-timeout", 0, "Raft election timeout (default 500ms)")
	fs.DurationVar(&o.leaseTimeout, "leader-lease-timeout", 0, "Raft leader lease timeout (default 250ms)")
	fs.DurationVar(&o.retAge, "retention-max-age", 0, "default retention: remove events older than this (0: keep; stores may set their own)")
	fs.Uint64Var(&o.retEvents, "retention-max-events", 0, "default retention: keep at most this many events per store (0: no limit)")
	fs.DurationVar(&o.retEvery, "retention-interval", time.Minute, "how often the leader applies retention")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this `ADDR` instead of on the API's listener")
	fs.BoolVar(&o.metricsPublic, "metrics-public", false, "serve /metrics without an API key")
	fs.BoolVar(&o.accessLog, "access-log", false, "log every API request: method, route, status, duration, key id and request id (never the key)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	return cmd
}

func (o *serveOpts) run(ctx context.Context, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	joins := splitList(o.join)
	if o.bootstrap && len(joins) > 0 {
		return usagef("--bootstrap and --join are exclusive")
	}
	if o.joinToken != "" && len(joins) == 0 {
		return usagef("--join-token goes with --join")
	}
	raftTLSCfg, err := o.raftTLS.config("raft-", true)
	if err != nil {
		return err
	}
	httpTLSCfg, err := o.httpTLS.config("", false)
	if err != nil {
		return err
	}
	allow, err := netguard.ParseAllow(o.deliveryAllow)
	if err != nil {
		return usagef("--delivery-allow: %v", err)
	}
	id, err := resolveNodeID(o.data, o.nodeID)
	if err != nil {
		return err
	}
	n, err := node.New(node.Config{
		ID:                       id,
		DataDir:                  o.data,
		HTTPAddr:                 o.httpAddr,
		HTTPAdvertise:            o.httpAdv,
		RaftAddr:                 o.raftAddr,
		RaftAdvertise:            o.raftAdv,
		Bootstrap:                len(joins) == 0,
		Join:                     joins,
		NonVoter:                 o.nonVoter,
		NoAuth:                   o.noAuth,
		CORSOrigins:              o.corsOrigins,
		DeliveryAllow:            allow,
		SecretsKeyFile:           o.secretsKeyFile,
		MaxSubscriptionsPerStore: o.maxSubs,
		MaxWaiters:               o.maxWaiters,
		JoinToken:                o.joinToken,
		RaftTLS:                  raftTLSCfg,
		HTTPTLS:                  httpTLSCfg,
		Logger:                   logger,
		UserAgent:                userAgent(),
		HeartbeatTimeout:         o.hbTimeout,
		ElectionTimeout:          o.elTimeout,
		LeaderLeaseTimeout:       o.leaseTimeout,
		RaftLogStore:             o.raftLogStore.val,
		SnapshotBytes:            o.snapshotBytes.n,
		TrailingBytes:            o.trailingBytes.n,
		Retention:                hlog.Retention{MaxAge: o.retAge, MaxEvents: o.retEvents},
		RetentionInterval:        o.retEvery,
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
	fmt.Fprintf(stdout, "herald (version %s): node %s serving %s://%s (raft %s, data %s)\n", Version, id, scheme, n.HTTPAddr(), n.RaftAddr(), o.data)
	fmt.Fprintf(stdout, "dashboard: %s://%s/ui/ (sign in with an API key)\n", scheme, n.HTTPAddr())
	<-ctx.Done()
	logger.Info("shutting down")
	return shutdownWithin(n, logger, stopDeadline)
}

// stopDeadline bounds a graceful stop: past it the process exits anyway
// (what is acknowledged is fsynced, so nothing acknowledged is lost; a
// restart replays whatever the event log had not applied).
const stopDeadline = 10 * time.Second

// shutdownWithin stops n gracefully (a leader hands leadership over
// first) and returns once it has stopped, or after d whatever n is
// doing.
func shutdownWithin(n interface{ Shutdown(context.Context) error }, logger *slog.Logger, d time.Duration) error {
	sctx, cancel := context.WithTimeout(context.Background(), d-2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(sctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		logger.Error("node did not stop in time; exiting anyway", "after", d)
		return fmt.Errorf("stop took longer than %s; exited without waiting", d)
	}
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
