package httpapi

import (
	"context"
	"errors"
	"io"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// Sentinel errors a Service wraps (with %w) so the API can map them to a
// status and code. Errors from package log (ErrInvalidStore,
// ErrInvalidEvent, ErrInvalidPattern, ErrStoreNotFound, ErrEventNotFound)
// are mapped too. See errors.go for the table.
var (
	// ErrNotLeader: this node cannot serve the request because it is not
	// the leader. The API forwards the request to LeaderHTTPAddr when one is
	// known, otherwise answers 503 no_leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: the cluster has no leader right now (503 no_leader).
	ErrNoLeader = errors.New("no leader")
	// ErrUnavailable: the node cannot serve now (shutting down, commit
	// lost); retrying later may succeed (503 unavailable).
	ErrUnavailable = errors.New("unavailable")
	// ErrTimeout: the operation did not finish in time (503 timeout).
	ErrTimeout = errors.New("timeout")
	// ErrBadRequest: the request is malformed in a way the service found
	// (400 bad_request).
	ErrBadRequest = errors.New("bad request")
	// ErrConflict: the request conflicts with existing state (409 conflict).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: a generic missing resource (404 not_found).
	ErrNotFound = errors.New("not found")
)

// Consistency is the read level a request asks for.
type Consistency string

// Read consistency levels.
const (
	// Local reads this node's state, however stale.
	Local Consistency = "local"
	// Leader reads on the node that believes it is the leader (forwarded
	// there from followers). Default.
	Leader Consistency = "leader"
	// Linearizable additionally confirms leadership with a quorum and
	// waits until the read reflects every write acknowledged before it.
	Linearizable Consistency = "linearizable"
)

// PublishRequest is one publish call: one or more events for one store,
// all or nothing.
type PublishRequest struct {
	Store string
	// Events have Type, Data and optionally ID and Version set by the
	// client; the Service fills in ID (when empty), Version (default "1")
	// and Timestamp.
	Events []hlog.NewEvent
	// Forwarded is set when another node sent this request on
	// (Herald-Forwarded): the Service must not pass it on again.
	Forwarded bool
}

// ReadRequest selects events of a store.
type ReadRequest struct {
	Store       string
	Options     hlog.ReadOptions
	Wait        time.Duration // long-poll up to this long when nothing matches
	Consistency Consistency
}

// NodeInfo describes one cluster member.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	State    string `json:"state"`    // leader, follower, candidate, unreachable, unknown
	Suffrage string `json:"suffrage"` // voter, nonvoter, staging
}

// ClusterInfo is the answer of GET /v1/cluster.
type ClusterInfo struct {
	ID           string     `json:"id"`
	Leader       string     `json:"leader"`
	LeaderHTTP   string     `json:"leader_http_addr"`
	Nodes        []NodeInfo `json:"nodes"`
	CommitIndex  uint64     `json:"commit_index"`
	AppliedIndex uint64     `json:"applied_index"`
}

// JoinRequest asks the leader to add a node.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    *bool  `json:"voter,omitempty"` // default true
}

// Service is what the HTTP API needs from a node. package node implements
// it; tests may implement it over a bare log.DB.
type Service interface {
	// Publish appends the request's events. The result holds one entry
	// per event; Duplicate entries are the original events.
	Publish(ctx context.Context, req PublishRequest) ([]hlog.Appended, error)
	// Read returns events and the next cursor, long-polling up to
	// req.Wait when none match yet.
	Read(ctx context.Context, req ReadRequest) ([]hlog.Event, uint64, error)
	// Get returns one event by id.
	Get(ctx context.Context, store, id string, c Consistency) (hlog.Event, error)
	// Store returns a store's summary.
	Store(ctx context.Context, name string, c Consistency) (hlog.StoreInfo, error)
	// Stores lists stores.
	Stores(ctx context.Context, c Consistency) ([]hlog.StoreInfo, error)
	// SetRetention sets a store's retention policy (zero: the server
	// default); leader only.
	SetRetention(ctx context.Context, store string, r hlog.Retention) error
	// Cluster describes the cluster (the leader's view unless c is Local).
	Cluster(ctx context.Context, c Consistency) (ClusterInfo, error)
	// Join adds (or updates) a member; leader only.
	Join(ctx context.Context, req JoinRequest) error
	// Remove removes a member; leader only.
	Remove(ctx context.Context, id string) error
	// TransferLeader hands leadership to the member to (any up-to-date
	// voter when empty) and returns the new leader's id; leader only.
	TransferLeader(ctx context.Context, to string) (string, error)
	// Ready reports nil when a leader is known and this node has applied
	// everything it knows to be committed.
	Ready(ctx context.Context) error
	// Backup writes a consistent copy of this node's event log (a bbolt
	// file) to w.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	// LeaderHTTPAddr returns the leader's HTTP address (host:port), or ""
	// when unknown or when this node is the leader.
	LeaderHTTPAddr() string

	SubscriptionService
}
