package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/herald-io/herald/internal/netguard"
	hlog "github.com/herald-io/herald/log"
)

// Config configures a Node.
type Config struct {
	// ID is the node's Raft server id. Required.
	ID string
	// DataDir holds events.db (the event log), Raft's log store (wal/ or
	// raft.db) and snapshots.
	DataDir string
	// HTTPAddr is the HTTP API listen address ("127.0.0.1:0" picks a port).
	HTTPAddr string
	// HTTPAdvertise is the HTTP address other nodes and clients use;
	// default the bound address.
	HTTPAdvertise string
	// RaftAddr is the Raft listen address.
	RaftAddr string
	// RaftAdvertise is the Raft address peers dial; default the bound one.
	RaftAdvertise string

	// Bootstrap forms a new single-node cluster if the data dir holds no
	// Raft state. Never combined with Join.
	Bootstrap bool
	// Join lists HTTP addresses of running members to ask to add this
	// node, used only when the data dir holds no Raft state.
	Join []string
	// NonVoter joins as a member that receives the log but does not vote
	// (a read replica); it never leads.
	NonVoter bool

	// JoinAnswerTimeout is how long a joining node may fail to answer the
	// leader on its Raft address before the leader removes it again
	// (default 30 s).
	JoinAnswerTimeout time.Duration

	// NoAuth turns API authentication off (every caller may do
	// everything). Only with a loopback HTTPAddr: tests, benchmarks.
	NoAuth bool
	// CORSOrigins are browser origins besides the node's own whose pages
	// may call the API ("*": any).
	CORSOrigins []string
	// JoinToken (herald cluster token) lets a new node obtain its
	// certificate from the cluster it joins: needed with Join unless
	// RaftTLS is set.
	JoinToken string

	// RaftTLS, when set, is the operator's PKI for the cluster port (Raft
	// and node-to-node HTTP): this node's certificate, and the cluster CA
	// as RootCAs and ClientCAs. Without it the node uses the cluster's
	// own CA in DATA/tls (created at bootstrap, handed over at join). The
	// cluster port is TLS either way.
	RaftTLS *tls.Config
	// SecretsKeyFile is the master key of the secrets at rest (signing
	// secrets are sealed under data keys it wraps); default
	// DATA/secrets.key, derived from the cluster CA's key on first start.
	// With RaftTLS every node needs the same file.
	SecretsKeyFile string
	// HTTPTLS serves the API over TLS (Certificates) and is the client
	// configuration for calls to other nodes' APIs (RootCAs): joining and
	// forwarding. Every node of a cluster uses HTTPS or none does.
	HTTPTLS *tls.Config

	Logger *slog.Logger
	// AccessLog logs every API request (both ports) at INFO, subsystem
	// "access": method, route pattern, status, duration, key id, request
	// id; never a key.
	AccessLog bool
	// MetricsAddr serves /metrics on a listener of its own instead of the
	// API's; MetricsPublic serves it without an API key (else any valid
	// key reads it).
	MetricsAddr   string
	MetricsPublic bool

	// RaftLogStore is Raft's log and stable store: "wal" (raft-wal in
	// DATA/wal/), "bolt" (raft-boltdb in DATA/raft.db), or "" for the one
	// DataDir holds ("wal" in a new data dir). A store that contradicts
	// the data dir, or a data dir with both, is refused
	// (raftstore.ErrLogStore); herald convert-log-store converts one.
	RaftLogStore string
	// RaftWALSegmentSize is the size at which a WAL segment is sealed
	// (default 64 MiB, raftstore.DefaultWALSegmentSize): disk space is
	// freed a whole segment at a time, and each is preallocated.
	RaftWALSegmentSize int

	// Raft tuning; zero takes raftstore's defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	// SnapshotBytes and TrailingBytes bound the Raft log by bytes: a
	// snapshot once the entries since the last hold SnapshotBytes, and
	// about TrailingBytes of entries kept after it (TrailingLogs at most);
	// zero takes raftstore's defaults (256 MiB each).
	SnapshotBytes uint64
	TrailingBytes uint64

	// Group commit: a batch is closed after BatchWait (default 1ms) while
	// earlier entries are in flight, or when it holds BatchMaxEvents
	// (default 5000) events or BatchMaxBytes (default 4 MiB).
	BatchWait      time.Duration
	BatchMaxEvents int
	BatchMaxBytes  int
	// BatchInFlight is how many entries the batcher lets Raft commit at
	// once (default 2): while they commit, the next batch fills.
	BatchInFlight int

	// Retention is the default retention policy of stores without their
	// own (zero: keep everything); RetentionInterval how often the leader
	// applies the policies (default 1m).
	Retention         hlog.Retention
	RetentionInterval time.Duration

	// DeliveryAllow opens address ranges that the guard on outgoing
	// connections (webhook endpoints and /test) refuses by default:
	// loopback, private, link-local and the other special-purpose ranges
	// (internal/netguard). The node's own listen addresses stay refused.
	DeliveryAllow []netip.Prefix
	// Resolver resolves endpoint and join host names (default the
	// system's); tests give a fake one.
	Resolver netguard.Resolver

	// MaxWaiters bounds the reads that long-poll (wait) on this node at
	// once (default 4096); past it a read with wait answers 503.
	MaxWaiters int
	// MaxSubscriptionsPerStore bounds a store's subscriptions (default
	// 100; past it a create answers 409 conflict).
	MaxSubscriptionsPerStore int

	// UserAgent is sent with every webhook (default "Herald").
	UserAgent string
	// Delivery tunes the webhook dispatcher; zero values take its
	// defaults.
	Delivery DeliveryOptions
}

// DeliveryOptions tune the webhook dispatcher (see node/delivery.Config).
type DeliveryOptions struct {
	// FlushInterval and FlushMax bound how results are batched into one
	// Raft entry (default 10ms, 1000 results).
	FlushInterval time.Duration
	FlushMax      int
	// Keep is the number of attempts kept per subscription (default
	// 100,000).
	Keep int
	// BreakerThreshold is the number of consecutive failures that opens a
	// subscription's circuit breaker (default 5).
	BreakerThreshold int
	// Jitter varies retry delays by this fraction either way (default
	// 0.2; negative for none).
	Jitter float64
}

func (c *Config) validate() error {
	if c.ID == "" {
		return errors.New("node: ID is required")
	}
	if err := hlog.ValidateNodeID(c.ID); err != nil {
		return fmt.Errorf("node: --node-id: %w", err)
	}
	if c.DataDir == "" {
		return errors.New("node: DataDir is required")
	}
	if c.HTTPAddr == "" || c.RaftAddr == "" {
		return errors.New("node: HTTPAddr and RaftAddr are required")
	}
	if c.Bootstrap && len(c.Join) > 0 {
		return errors.New("node: Bootstrap and Join are exclusive")
	}
	if c.NoAuth && !IsLoopback(c.HTTPAddr) {
		return fmt.Errorf("node: --no-auth is only for an API on a loopback address, not %s", c.HTTPAddr)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = 4096
	}
	if c.MaxSubscriptionsPerStore == 0 {
		c.MaxSubscriptionsPerStore = 100
	}
	if c.JoinAnswerTimeout == 0 {
		c.JoinAnswerTimeout = 30 * time.Second
	}
	if c.BatchWait == 0 {
		c.BatchWait = time.Millisecond
	}
	if c.BatchMaxEvents == 0 {
		c.BatchMaxEvents = 5000
	}
	if c.BatchInFlight == 0 {
		c.BatchInFlight = 2
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 4 << 20
	}
	return nil
}

// IsLoopback reports whether a listen address (host:port) binds only to
// loopback. An empty host or 0.0.0.0 binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
