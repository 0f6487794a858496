package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// Sentinel errors a service wraps (with %w) so the API can map them to a
// code. Errors from package log (ErrInvalidStore, ErrInvalidEvent,
// ErrInvalidSubscription, ErrInvalidRetention, ErrReservedStore,
// ErrStoreNotFound, ...) are mapped too. errors.go has the table.
var (
	// ErrNotLeader: this node cannot serve the request because it is not
	// the leader. The API relays the request to the leader when one is
	// known (Leader), otherwise answers 503 no_leader.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: the cluster has no leader right now (503 no_leader).
	ErrNoLeader = errors.New("no leader")
	// ErrUnavailable: the node cannot serve now (shutting down, commit
	// lost); retrying later may succeed (503 unavailable).
	ErrUnavailable = errors.New("unavailable")
	// ErrTimeout: the operation did not finish in time (503 timeout).
	ErrTimeout = errors.New("timeout")
	// ErrNotReady: the node is up but not ready to serve (503 not_ready).
	ErrNotReady = errors.New("not ready")
	// ErrInvalidMember: a membership request is incomplete or names a
	// member it cannot apply to (400 invalid_member).
	ErrInvalidMember = errors.New("invalid member")
	// ErrConflict: the request conflicts with the current state and will
	// keep doing so (409 conflict).
	ErrConflict = errors.New("conflict")
	// ErrNotFound: a missing resource without a more specific sentinel
	// (404 not_found).
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: a value is over a storage limit (413
	// payload_too_large).
	ErrTooLarge = errors.New("too large")
	// ErrBlockedDestination: a URL or address Herald will not connect to
	// (400 blocked_destination).
	ErrBlockedDestination = errors.New("blocked destination")
	// ErrRateLimited: too many requests of one kind; RateLimitedError
	// says when to come back (429 rate_limited).
	ErrRateLimited = errors.New("rate limited")
)

// RateLimitedError is an ErrRateLimited with the delay for Retry-After.
type RateLimitedError struct {
	Msg   string
	Retry time.Duration
}

func (e *RateLimitedError) Error() string { return ErrRateLimited.Error() + ": " + e.Msg }
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// The services behind the API, by role. package node implements all of
// them; a test fake implements the ones its handlers use (see Services).
// Services receive requests whose syntax the API has checked (JSON,
// parameters, store names); what the values mean is theirs to decide:
// defaults, ranges, existence, leadership.

// EventService publishes and reads events.
type EventService interface {
	// Publish appends the request's events, all or nothing. The result
	// holds one entry per event; Duplicate entries are the originals.
	Publish(ctx context.Context, req PublishRequest) ([]hlog.Appended, error)
	// Read returns events and the next cursor, long-polling up to
	// req.Wait when none match yet.
	Read(ctx context.Context, req ReadRequest) ([]hlog.Event, uint64, error)
	// Get returns one event by id.
	Get(ctx context.Context, store, id string, c api.Consistency) (hlog.Event, error)
}

// StoreService describes stores and sets their retention.
type StoreService interface {
	Store(ctx context.Context, name string, c api.Consistency) (hlog.StoreInfo, error)
	Stores(ctx context.Context, c api.Consistency) ([]hlog.StoreInfo, error)
	// Types returns a store's type index (hlog.ErrStoreNotFound before
	// its first event, as Store).
	Types(ctx context.Context, name string, c api.Consistency) (hlog.StoreTypes, error)
	// SetRetention sets a store's own retention policy (zero: the server
	// default); leader only.
	SetRetention(ctx context.Context, store string, r hlog.Retention) error
}

// SubscriptionService manages subscriptions and their delivery logs.
// Every method that takes a store answers hlog.ErrSubscriptionNotFound
// when the subscription belongs to another store. Writes are leader-only:
// a follower answers ErrNotLeader and the API relays the request.
type SubscriptionService interface {
	// CreateSubscription applies defaults to req.Patch, validates the
	// result and creates it.
	CreateSubscription(ctx context.Context, req CreateSubscriptionRequest) (hlog.Subscription, error)
	ListSubscriptions(ctx context.Context, store string, c api.Consistency) ([]hlog.Subscription, error)
	GetSubscription(ctx context.Context, store, id string, c api.Consistency) (hlog.Subscription, error)
	// UpdateSubscription applies a partial update (also pause/enable via
	// Status); an invalid result is hlog.ErrInvalidSubscription.
	UpdateSubscription(ctx context.Context, store, id string, p hlog.SubPatch) (hlog.Subscription, error)
	DeleteSubscription(ctx context.Context, store, id string) error
	// RotateSecret makes req.Secret (a new one when "") current; the old
	// one keeps signing for the grace period. The result's Secrets[0] is
	// the new secret.
	RotateSecret(ctx context.Context, store, id string, req RotateRequest) (hlog.Subscription, error)
	// Redeliver queues the event (any outcome) for delivery now.
	Redeliver(ctx context.Context, store, id, eventID string) (hlog.RetryEntry, error)
	Replay(ctx context.Context, store, id string, req ReplayRequest) (api.ReplayResult, error)
	// TestSubscription sends a herald.test event (not stored) to the
	// endpoint now and returns the attempt.
	TestSubscription(ctx context.Context, store, id string) (hlog.Attempt, error)
	Deliveries(ctx context.Context, store, id string, q DeliveriesQuery) (DeliveriesPage, error)
	// EventDeliveries returns every kept attempt for one event.
	EventDeliveries(ctx context.Context, store, id, eventID string, c api.Consistency) ([]hlog.Attempt, error)
}

// ClusterService describes and changes the cluster's membership.
type ClusterService interface {
	// Cluster describes the cluster (the leader's view unless c is
	// local).
	Cluster(ctx context.Context, c api.Consistency) (api.Cluster, error)
	// Join adds (or updates, or promotes) a member; leader only.
	Join(ctx context.Context, req api.JoinRequest) error
	// Remove removes a member; leader only.
	Remove(ctx context.Context, id string) error
	// TransferLeader hands leadership to the member to (any up-to-date
	// voter when empty) and returns the new leader's id; leader only.
	TransferLeader(ctx context.Context, to string) (string, error)
	// Ready reports nil when a leader is known and this node has applied
	// everything it knows to be committed.
	Ready(ctx context.Context) error
}

// BackupService copies the event log.
type BackupService interface {
	// Backup writes a consistent copy of this node's event log (a bbolt
	// file) to w.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Leader locates the leader for relaying.
type Leader interface {
	// RelayTarget returns where to relay a request for the leader (a URL:
	// a node's cluster port) and the leader's HTTP address (host:port, for
	// Herald-Forwarded-To); both "" when the leader is unknown or this
	// node leads.
	RelayTarget() (url, httpAddr string)
}

// KeyService manages API keys (admin only) and authenticates requests.
type KeyService interface {
	Authenticator
	// CreateKey creates a key; the result's Key is the key itself, which
	// is never shown again.
	CreateKey(ctx context.Context, req api.KeyRequest) (api.Key, error)
	Keys(ctx context.Context) ([]api.Key, error)
	Key(ctx context.Context, id string) (api.Key, error)
	// RevokeKey deletes a key on every node; leader only.
	RevokeKey(ctx context.Context, id string) error
	// RotateSecretsKey makes a new data key for the secrets at rest and
	// re-seals every secret under it; leader only.
	RotateSecretsKey(ctx context.Context) (api.SecretsKeyRotation, error)
}

// HealthService is implemented by a SubscriptionService that can say how
// delivery is going for a subscription (package node does): the API adds
// it to every subscription it reads.
type HealthService interface {
	SubscriptionHealth(sub *hlog.Subscription) (hlog.Health, error)
}

// JoinService lets new nodes into the cluster: join tokens, and the
// certificates they buy.
type JoinService interface {
	// Hello names this node's cluster port (no key needed).
	Hello() api.Hello
	// CreateJoinToken makes a one-time join token valid for ttl; leader
	// only.
	CreateJoinToken(ctx context.Context, ttl time.Duration) (api.JoinToken, error)
	// Enroll checks and consumes req's token and signs req's certificate
	// request (cluster port only).
	Enroll(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error)
}

// Service is every role at once: what package node implements.
type Service interface {
	EventService
	StoreService
	SubscriptionService
	ClusterService
	BackupService
	Leader
	KeyService
	JoinService
}

// Services are what an API serves. The routes of a nil service are not
// registered (they answer 404), so a test can serve only the role it
// tests; without Leader nothing is relayed.
type Services struct {
	Events        EventService
	Stores        StoreService
	Subscriptions SubscriptionService
	Cluster       ClusterService
	Backup        BackupService
	Leader        Leader
	Keys          KeyService
	Join          JoinService
	// Metrics serves GET /metrics (Prometheus text), to any valid key,
	// or to anyone with WithMetricsPublic.
	Metrics http.Handler
}

// All serves every role from one Service.
// A Service that has a MetricsHandler (returning non-nil) serves
// /metrics too.
func All(s Service) Services {
	svc := Services{Events: s, Stores: s, Subscriptions: s, Cluster: s, Backup: s, Leader: s, Keys: s, Join: s}
	if m, ok := s.(interface{ MetricsHandler() http.Handler }); ok {
		svc.Metrics = m.MetricsHandler()
	}
	return svc
}

// PublishRequest is one publish call: one or more events for one store,
// all or nothing.
type PublishRequest struct {
	Store string
	// Events have Type, Data and optionally ID, Version and (a single
	// event) IdempotencyKey set by the client; the service fills in ID
	// (when empty), Version (default "1") and Timestamp, and validates.
	Events []hlog.NewEvent
	// Forwarded is set when another node sent this request on
	// (Herald-Forwarded): the service must not pass it on again.
	Forwarded bool
}

// ReadRequest selects events of a store.
type ReadRequest struct {
	Store       string
	Options     hlog.ReadOptions
	Wait        time.Duration // long-poll up to this long when nothing matches
	Consistency api.Consistency
}

// CreateSubscriptionRequest creates a subscription on Store from the
// fields the client set (Patch); the service applies the defaults,
// validates, and assigns the id, the times and, when Secret is "", a new
// secret.
type CreateSubscriptionRequest struct {
	Store  string
	Patch  hlog.SubPatch
	Secret string
	// FromSeq starts delivery at this seq (replaying the log from there);
	// nil starts at the store's current end.
	FromSeq *uint64
}

// RotateRequest rotates a subscription's secret.
type RotateRequest struct {
	Secret string // "" generates one
	// Grace is how long the old secret keeps signing; nil is the default.
	Grace *time.Duration
}

// ReplayRequest re-sends events of a store to a subscription.
type ReplayRequest struct {
	FromSeq uint64    // first seq to re-send (0 when Since is used)
	Since   time.Time // or: from the first event with a timestamp >= Since
	// OnlyDead re-sends only deliveries that died.
	OnlyDead bool
}

// DeliveriesQuery selects from a subscription's delivery log.
type DeliveriesQuery struct {
	Status      api.DeliveryStatus // "" for every attempt
	After       uint64             // attempt id; a seq for dead and pending
	Limit       int                // 1-1000
	Consistency api.Consistency
}

// DeliveriesPage is one page of the delivery log. Attempts is set for
// every status but pending, which fills Pending.
type DeliveriesPage struct {
	Attempts []hlog.Attempt
	Pending  []hlog.RetryEntry
	// Next is the After of the next page; 0 when this is the last.
	Next uint64
}
