package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/clusterport"
	"github.com/herald-io/herald/internal/netguard"
	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node/delivery"
	"github.com/herald-io/herald/raftstore"
)

// Node is one Herald server: event log, Raft and HTTP API.
type Node struct {
	cfg Config
	log *slog.Logger

	db      *hlog.DB
	raft    *raftstore.Store
	batch   *batcher
	ids     *idGen
	httpLn  net.Listener
	httpSrv *http.Server
	// cluster is the cluster port (Raft and node-to-node HTTP, TLS);
	// peerSrv serves the API there to other members.
	cluster *clusterport.Listener
	// guard vets every address deliveries and /test dial; clusterGuard
	// every cluster-port dial and a joining node's Raft address.
	guard, clusterGuard *netguard.Guard
	metrics             *metrics
	metricsSrv          *http.Server
	metricsLn           net.Listener
	tests               testLimits // /test, per subscription
	waiters             atomic.Int64
	createMu            sync.Mutex // one subscription create at a time (the per-store quota)
	secrets             secretState
	enrolledKey         string // the secrets master key the enrollment answer carried
	peerSrv             *http.Server
	tls                 *clusterTLS
	keys                keyCache
	// adminKeyMu makes one first admin key, not two; adminKeyDone is set
	// once the cluster has keys and the file is in place.
	adminKeyMu   sync.Mutex
	adminKeyDone atomic.Bool
	// public calls other nodes' public APIs (hello, before a node has
	// joined); members calls their cluster ports as this node (joins,
	// which a follower may relay on); peers is members marked forwarded
	// (publishes sent on to the leader, the API's relay: never relayed
	// again).
	public  *api.Client
	members *api.Client
	peers   *api.Client

	httpAddr string // advertised HTTP address

	sender           *delivery.Sender
	dispatcher       *delivery.Dispatcher
	deliveryStarted  bool
	deliveryStop     chan struct{}
	deliveryStopOnce sync.Once
	deliveryDone     chan struct{}
	// crashOnClose (tests) closes Raft before the dispatcher, so results of
	// finished attempts are lost as in a crash.
	crashOnClose bool

	lostCommits atomic.Int64 // publishes retried after leadership was lost mid-commit

	leaderMu     sync.Mutex
	leaderID     string
	isLeader     bool
	leaderChange chan struct{} // closed and replaced on every change

	stop      chan struct{}
	ctx       context.Context // cancelled by Close: ends outgoing calls
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New checks cfg; Open starts the node.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	public, err := api.NewClient(api.Config{
		// No Addresses: every call goes to a node chosen then (On).
		TLS:        cfg.HTTPTLS,
		Timeout:    membershipTimeout,
		UserAgent:  "herald-node/" + cfg.ID,
		MaxRetries: -1, // the callers retry as each call allows
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("node: API client: %w", err)
	}
	n := &Node{
		ctx:          ctx,
		cancel:       cancel,
		cfg:          cfg,
		log:          cfg.Logger.With("subsystem", "node", "node", cfg.ID),
		ids:          newIDGen(),
		stop:         make(chan struct{}),
		leaderChange: make(chan struct{}),
		public:       public,
		deliveryStop: make(chan struct{}),
		deliveryDone: make(chan struct{}),
	}
	n.metrics = newMetrics(n)
	return n, nil
}

// Open opens the data dir, starts Raft and serves HTTP. It returns once
// both listeners are up; joining a cluster continues in the background.
func (n *Node) Open() (err error) {
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	// Before anything is created in the data dir (a CA, keys): the log
	// store must match what the dir holds.
	if _, err := raftstore.ChooseLogStore(n.cfg.DataDir, n.cfg.RaftLogStore); err != nil {
		return logStoreError(n.cfg.RaftLogStore, err)
	}
	n.db, err = hlog.Open(filepath.Join(n.cfg.DataDir, "events.db"), hlog.Options{
		Logger: n.cfg.Logger.With("subsystem", "log", "node", n.cfg.ID),
	})
	if err != nil {
		return err
	}

	n.keys.db = n.db
	if n.tls, err = n.setupTLS(); err != nil {
		return err
	}
	if err := n.setupSecrets(); err != nil && !errors.Is(err, secrets.ErrWrongMasterKey) {
		return err // a wrong key is logged: the node serves, and cannot sign
	}
	n.cluster, err = clusterport.Listen(n.cfg.RaftAddr, n.tls.server, func(cs *tls.ConnectionState) bool {
		_, ok := n.tls.member(cs)
		return ok
	}, n.cfg.Logger.With("subsystem", "cluster", "node", n.cfg.ID))
	if err != nil {
		return fmt.Errorf("node: cluster port: %w", err)
	}
	if n.clusterGuard, err = netguard.NewCluster(netguard.Config{Resolver: n.cfg.Resolver}); err != nil {
		return err
	}
	dialer := &clusterport.Dialer{TLS: n.tls.client, Control: n.clusterGuard.Control}
	if a, ok := n.cluster.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		dialer.Local = &net.TCPAddr{IP: a.IP} // talk from the IP we listen on
	}
	peers, err := api.NewClient(api.Config{
		// No Addresses: every call goes to a member chosen then (On).
		// Joins and publishes bound themselves with shorter contexts; a
		// relayed long poll needs up to MaxWait.
		HTTPClient: clusterHTTPClient(dialer, api.MaxWait+10*time.Second),
		UserAgent:  "herald-node/" + n.cfg.ID,
		MaxRetries: -1,
	})
	if err != nil {
		return err
	}
	n.members, n.peers = peers, peers.Forwarding()

	n.httpLn, err = net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node: http listen: %w", err)
	}
	if n.cfg.HTTPTLS != nil {
		n.httpLn = tls.NewListener(n.httpLn, n.cfg.HTTPTLS)
	}
	n.httpAddr = n.cfg.HTTPAdvertise
	if n.httpAddr == "" {
		n.httpAddr = n.httpLn.Addr().String()
	}
	n.guard, err = netguard.New(netguard.Config{
		Allow:    n.cfg.DeliveryAllow,
		Self:     []string{n.httpLn.Addr().String(), n.cluster.Addr().String(), n.httpAddr},
		Resolver: n.cfg.Resolver,
	})
	if err != nil {
		return err
	}

	n.raft, err = raftstore.New(raftstore.Config{
		ID:                 n.cfg.ID,
		Dir:                n.cfg.DataDir,
		Cluster:            n.cluster,
		Dialer:             dialer,
		Advertise:          n.cfg.RaftAdvertise,
		DB:                 n.db,
		Logger:             n.cfg.Logger.With("subsystem", "raft", "node", n.cfg.ID),
		Bootstrap:          n.cfg.Bootstrap,
		LogStore:           n.cfg.RaftLogStore,
		WALSegmentSize:     n.cfg.RaftWALSegmentSize,
		HeartbeatTimeout:   n.cfg.HeartbeatTimeout,
		ElectionTimeout:    n.cfg.ElectionTimeout,
		LeaderLeaseTimeout: n.cfg.LeaderLeaseTimeout,
		SnapshotThreshold:  n.cfg.SnapshotThreshold,
		SnapshotInterval:   n.cfg.SnapshotInterval,
		TrailingLogs:       n.cfg.TrailingLogs,
		SnapshotBytes:      n.cfg.SnapshotBytes,
		TrailingBytes:      n.cfg.TrailingBytes,
		OnLeaderChange:     n.onLeaderChange,
		Observe:            n.metrics.observeRaft,
	})
	if err != nil {
		return err
	}
	if err := n.raft.Open(); err != nil {
		n.raft = nil
		if errors.Is(err, raftstore.ErrLogStore) {
			return logStoreError(n.cfg.RaftLogStore, err)
		}
		return err
	}
	n.batch = newBatcher(n.raft, n.log, n.cfg.BatchWait, n.cfg.BatchMaxEvents, n.cfg.BatchMaxBytes, n.cfg.BatchInFlight)
	n.batch.committed = n.metrics.committed
	n.batch.start()

	dc := n.cfg.Delivery
	n.sender = delivery.NewSender(delivery.SenderConfig{UserAgent: n.cfg.UserAgent, DialContext: n.guard.DialContext})
	n.dispatcher = delivery.New(delivery.Config{
		Source:           n.db,
		Committer:        n.raft,
		Sender:           n.sender,
		Logger:           n.cfg.Logger.With("subsystem", "delivery", "node", n.cfg.ID),
		NewID:            n.ids.next,
		FlushInterval:    dc.FlushInterval,
		FlushMax:         dc.FlushMax,
		Keep:             dc.Keep,
		BreakerThreshold: dc.BreakerThreshold,
		Jitter:           dc.Jitter,
		Open:             n.openSealed,
		OnAttempt:        n.metrics.attempt,
	})
	n.deliveryStarted = true
	n.wg.Add(2)
	go n.deliveryLoop()
	go n.retentionLoop()

	httpLog := n.cfg.Logger.With("subsystem", "http", "node", n.cfg.ID)
	opts := []httpapi.Option{httpapi.WithRelay(n.peers)}
	if n.cfg.MetricsPublic {
		opts = append(opts, httpapi.WithMetricsPublic())
	}
	if n.cfg.AccessLog {
		opts = append(opts, httpapi.WithAccessLog(n.cfg.Logger.With("subsystem", "access", "node", n.cfg.ID)))
	}
	if !n.cfg.NoAuth {
		opts = append(opts, httpapi.WithAuth(n, n.keys.used))
	}
	public := append(slices.Clone(opts), httpapi.WithCORS(n.cfg.CORSOrigins), httpapi.WithPublishObserver(n.metrics.publishAnswered))
	if IsLoopback(n.cfg.HTTPAddr) {
		host, _, _ := net.SplitHostPort(n.httpAddr)
		public = append(public, httpapi.WithHostCheck([]string{host}))
	}
	n.httpSrv = n.newHTTPServer(httpapi.New(httpapi.All(n), n.cfg.Logger.With("node", n.cfg.ID), public...), httpLog)
	peerOpts := append(slices.Clone(opts), httpapi.WithPeer(func(r *http.Request) (string, bool) {
		if r.TLS == nil {
			return "", false
		}
		return n.tls.member(r.TLS)
	}))
	n.peerSrv = n.newHTTPServer(httpapi.New(httpapi.All(n), n.cfg.Logger.With("node", n.cfg.ID, "port", "cluster"), peerOpts...), httpLog)
	servers := []struct {
		srv *http.Server
		ln  net.Listener
	}{{n.httpSrv, n.httpLn}, {n.peerSrv, n.cluster.HTTP()}}
	if n.cfg.MetricsAddr != "" {
		// Only /metrics there, with the same key check (or none with
		// MetricsPublic).
		if n.metricsLn, err = net.Listen("tcp", n.cfg.MetricsAddr); err != nil {
			return fmt.Errorf("node: metrics listen: %w", err)
		}
		mopts := slices.Clone(opts)
		n.metricsSrv = n.newHTTPServer(httpapi.New(httpapi.Services{Metrics: n.metrics.handler()}, n.cfg.Logger.With("node", n.cfg.ID, "port", "metrics"), mopts...), httpLog)
		servers = append(servers, struct {
			srv *http.Server
			ln  net.Listener
		}{n.metricsSrv, n.metricsLn})
	}
	for _, s := range servers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, clusterport.ErrClosed) {
				n.log.Error("http server stopped", "error", err)
			}
		}()
	}

	n.wg.Add(1)
	go n.registerLoop()
	n.log.Info("node open", "http", n.httpAddr, "raft", n.raft.Addr(), "data", n.cfg.DataDir)
	return nil
}

func (n *Node) newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h,
		// net/http's own complaints (TLS handshakes that fail, bad
		// requests) go to the http logger, not to stderr.
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: 10 * time.Second,
		// net/http refuses, in plain text, what is over this; the API
		// answers JSON 431 past api.MaxHeaderBytes below it (a 1.1 MB
		// URL once got net/http's plain 431 at the 1 MiB default).
		MaxHeaderBytes: 4 << 20,
		ReadTimeout:    60 * time.Second, // request bodies; long polls wait in the handler
		IdleTimeout:    120 * time.Second,
	}
}

// Shutdown stops the node gracefully: a leader with other voters first
// hands leadership over (so the cluster does not wait out an election
// timeout), then the node closes. If the transfer fails the node closes
// anyway; the others elect a leader as after a crash.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.raft != nil && n.raft.IsLeader() && n.raft.Voters() > 1 {
		// Commit the results of finished deliveries while still leader.
		n.stopDelivery()
		if to, err := n.TransferLeader(ctx, ""); err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "error", err)
		} else {
			n.log.Info("handed leadership over before shutdown", "to", to)
		}
	}
	return n.Close()
}

// Close stops the node without transferring leadership: HTTP first, then
// the batcher, Raft, and the event log.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.stop)
		n.cancel()
		err = n.closeAll()
		n.log.Info("node closed")
	})
	return err
}

func (n *Node) closeAll() error {
	var errs []error
	for _, srv := range []*http.Server{n.httpSrv, n.peerSrv, n.metricsSrv} {
		if srv == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		cancel()
	}
	if n.httpSrv == nil && n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.batch != nil {
		n.batch.close()
	}
	if n.crashOnClose && n.raft != nil {
		if err := n.raft.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.stopDelivery()
	if n.sender != nil {
		n.sender.Close()
	}
	if n.raft != nil && !n.crashOnClose {
		if err := n.raft.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.cluster != nil {
		n.cluster.Close() // Raft closed it already, unless Open failed first
	}
	if n.peers != nil {
		n.peers.CloseIdleConnections()
	}
	n.wg.Wait()
	if n.db != nil {
		if err := n.db.Close(); err != nil && !errors.Is(err, hlog.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.ID }

// DataDir returns the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// HTTPAddr returns the advertised HTTP address (host:port).
func (n *Node) HTTPAddr() string { return n.httpAddr }

// RaftAddr returns the Raft address.
func (n *Node) RaftAddr() string { return n.raft.Addr() }

// IsLeader reports whether this node leads now.
func (n *Node) IsLeader() bool { return n.raft.IsLeader() }

// DB exposes the event log for tests and tools (read-only use).
func (n *Node) DB() *hlog.DB { return n.db }

// Snapshot forces a Raft snapshot and log truncation.
func (n *Node) Snapshot() error { return apiError(n.raft.Snapshot()) }

// AppliedIndex is the last Raft index applied to the event log.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

func (n *Node) onLeaderChange(isLeader bool, leaderID, _ string) {
	if isLeader {
		n.secrets.migrated.Store(false) // a new leader checks once
	}
	n.leaderMu.Lock()
	n.isLeader, n.leaderID = isLeader, leaderID
	close(n.leaderChange)
	n.leaderChange = make(chan struct{})
	n.leaderMu.Unlock()
}

// WaitLeader blocks until some node is leader (as seen here) or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	for {
		n.leaderMu.Lock()
		id, ch := n.leaderID, n.leaderChange
		n.leaderMu.Unlock()
		if id != "" {
			return id, nil
		}
		if id, _ := n.raft.Leader(); id != "" {
			return id, nil // observed before the observer told us
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// nodeURL turns a node's HTTP address into a URL with the cluster's scheme.
func (n *Node) nodeURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	if n.cfg.HTTPTLS != nil {
		return "https://" + addr
	}
	return "http://" + addr
}
