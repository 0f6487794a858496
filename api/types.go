package api

import (
	"encoding/json"
	"time"
)

// Request limits the server enforces.
const (
	// MaxBodyBytes bounds a publish body.
	MaxBodyBytes = 4 << 20
	// MaxSmallBodyBytes bounds every other request body.
	MaxSmallBodyBytes = 64 << 10
	// MaxBatchEvents is the most events one publish may carry.
	MaxBatchEvents = 1000
	// MaxLimit is the largest page of events or deliveries; DefaultLimit
	// the page size when none is asked for.
	MaxLimit     = 1000
	DefaultLimit = 100
	// MaxWait bounds a long poll.
	MaxWait = 30 * time.Second
	// MaxHeaderBytes bounds a request's line and headers (431 beyond;
	// past 4 MiB net/http answers itself, in plain text).
	MaxHeaderBytes = 64 << 10
	// MaxQueryPatterns bounds the type patterns of one read.
	MaxQueryPatterns = 64
)

// Consistency is the read level a request asks for (?consistency=).
type Consistency string

// Read consistency levels.
const (
	// ConsistencyLocal reads the answering node's own state, however
	// stale.
	ConsistencyLocal Consistency = "local"
	// ConsistencyLeader reads on the node that believes it leads; a
	// follower relays the request there. The server's default.
	ConsistencyLeader Consistency = "leader"
	// ConsistencyLinearizable also confirms leadership with a quorum and
	// waits until the read reflects every write acknowledged before it.
	ConsistencyLinearizable Consistency = "linearizable"
)

// QueryOptions are the options every read takes. A nil *QueryOptions is
// the server's default (leader).
type QueryOptions struct {
	Consistency Consistency
}

// Event is a stored event. Data is the published JSON value byte for byte.
type Event struct {
	ID        string          `json:"id"`
	Store     string          `json:"store"`
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Version   string          `json:"version"`
	Data      json.RawMessage `json:"data"`
	// Hash is the hex SHA-256 chain hash: equal head hashes mean equal
	// logs.
	Hash string `json:"hash"`
}

// NewEvent is an event to publish. Type and Data are required (Data may be
// the JSON null); ID (the client's own, making a retry safe) and Version
// (default "1") are optional.
type NewEvent struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Version string          `json:"version,omitempty"`
	Data    json.RawMessage `json:"data"`
	// IdempotencyKey is sent as the Idempotency-Key header of a
	// single-event publish (a batch refuses it: give its events ids).
	IdempotencyKey string `json:"-"`
}

// PublishBatch is the body of a batch publish: all or nothing, in order,
// with contiguous seqs.
type PublishBatch struct {
	Events []NewEvent `json:"events"`
}

// EventList is the answer to a batch publish: the stored events in
// request order (originals for those already stored).
type EventList struct {
	Events []Event `json:"events"`
}

// PublishResult is what a publish stored.
type PublishResult struct {
	Events []Event
	// Created is true when at least one event was new (201); false when
	// every event was already stored (200) and Events are the originals.
	Created bool
}

// EventPage is one page of a store's events. Next is the After of the
// following page.
type EventPage struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
}

// ReadOptions select events (GET /v1/stores/{store}/events).
type ReadOptions struct {
	After uint64 // events with seq > After
	Limit int    // 1-MaxLimit; 0 is the server's default (DefaultLimit)
	// Types are type patterns; an event matching any is returned.
	Types []string
	// Wait long-polls up to this long (at most MaxWait) when nothing
	// matches yet.
	Wait        time.Duration
	Consistency Consistency
}

// Retention is a store's retention policy. MaxAge is a duration of at
// least one minute ("720h"); "" or 0 of either field is no limit.
type Retention struct {
	MaxAge    string `json:"max_age,omitempty"`
	MaxEvents uint64 `json:"max_events,omitempty"`
}

// SetRetention is the body of PUT /v1/stores/{store}. An empty Retention
// returns the store to the server's default policy.
type SetRetention struct {
	Retention *Retention `json:"retention"`
}

// StoreRetention is the answer to PUT /v1/stores/{store}: the store's own
// policy (nil: the server default applies).
type StoreRetention struct {
	Store     string     `json:"store"`
	Retention *Retention `json:"retention"`
}

// Store is a store's summary.
type Store struct {
	Store     string    `json:"store"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	HeadHash  string    `json:"head_hash"`
	Events    uint64    `json:"events"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Retention is the policy in force (the store's own or the server
	// default); HeldBack counts the events it would remove now that the
	// subscriptions in HeldBy still have to deliver.
	Retention *Retention `json:"retention,omitempty"`
	HeldBack  uint64     `json:"held_back,omitempty"`
	HeldBy    []string   `json:"held_by,omitempty"`
}

// StoreList is the answer to GET /v1/stores.
type StoreList struct {
	Stores []Store `json:"stores"`
}

// StoreTypes is the answer to GET /v1/stores/{store}/types: the event
// types of the store's stored events, by name. Truncated means the store
// has events of types not listed: it reached the server's bound on types
// per store (1,000), past which new types are not added.
type StoreTypes struct {
	Store     string      `json:"store"`
	Types     []EventType `json:"types"`
	Truncated bool        `json:"truncated"`
}

// EventType is one event type of a store. Count is the number of the
// store's events of that type (a publish that was deduplicated is not
// one; events retention removed no longer count); LastSeq and LastSeenAt
// are the newest one's seq and timestamp.
type EventType struct {
	Type       string    `json:"type"`
	Count      uint64    `json:"count"`
	LastSeenAt time.Time `json:"last_seen_at"`
	LastSeq    uint64    `json:"last_seq"`
}

// SubscriptionStatus is a subscription's delivery status.
type SubscriptionStatus string

// Subscription statuses.
const (
	StatusActive   SubscriptionStatus = "active"   // delivering
	StatusPaused   SubscriptionStatus = "paused"   // stopped by a user
	StatusDisabled SubscriptionStatus = "disabled" // stopped by Herald (DisabledReason)
)

// Reasons Herald disables a subscription.
const (
	DisabledGone      = "gone"               // the endpoint answered 410
	DisabledRequested = "receiver_requested" // it sent webhook-delivery: disable
	DisabledFailing   = "failing"            // it failed for disable_after
)

// Subscription is a webhook endpoint on a store. Durations are Go
// duration strings ("15s", "5m", "2h"). Secret is set only in the answers
// to create and rotate.
type Subscription struct {
	ID            string            `json:"id"`
	Store         string            `json:"store"`
	URL           string            `json:"url"`
	Types         []string          `json:"types"`
	Description   string            `json:"description"`
	Enabled       bool              `json:"enabled"`
	Ordered       bool              `json:"ordered"`
	MaxInFlight   int               `json:"max_in_flight"`
	RateLimit     float64           `json:"rate_limit"`
	Timeout       string            `json:"timeout"`
	RetrySchedule []string          `json:"retry_schedule"`
	Headers       map[string]string `json:"headers"`
	// SensitiveHeaders names the headers whose values are stored sealed
	// and never shown: in Headers their value is "".
	SensitiveHeaders []string           `json:"sensitive_headers,omitempty"`
	DisableAfter     string             `json:"disable_after"`
	CreatedAt        time.Time          `json:"created_at"`
	UpdatedAt        time.Time          `json:"updated_at"`
	Status           SubscriptionStatus `json:"status"`
	DisabledReason   string             `json:"disabled_reason,omitempty"`
	// Cursor: every event with a seq at or below it has been handed off
	// (delivered, dead, skipped, or waiting in the retry set).
	Cursor       uint64    `json:"cursor"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	BreakerOpen  bool      `json:"breaker_open"`
	Secret       string    `json:"secret,omitempty"`
	// Health is how delivery is going, read from the answering node's
	// copy of the log (reads of one or more subscriptions carry it).
	Health *SubscriptionHealth `json:"health,omitempty"`
}

// SubscriptionHealth says how far behind a subscription is and how its
// last attempt went.
type SubscriptionHealth struct {
	// LagEvents counts the store's events after the cursor: not yet
	// handed off. OldestPendingAt is the time of the first of them.
	LagEvents       uint64    `json:"lag_events"`
	OldestPendingAt time.Time `json:"oldest_pending_at,omitzero"`
	// RetryPending counts deliveries waiting in the retry set.
	RetryPending int `json:"retry_pending"`
	// LastAttempt is the newest recorded attempt, without its headers
	// and body (read them in the delivery log).
	LastAttempt *Delivery `json:"last_attempt,omitempty"`
}

// SubscriptionList is the answer to GET …/subscriptions.
type SubscriptionList struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// SubscriptionPatch is a partial update (PATCH …/subscriptions/{id}):
// only the fields set change. Ptr makes the pointers.
type SubscriptionPatch struct {
	URL           *string            `json:"url,omitempty"`
	Types         *[]string          `json:"types,omitempty"`
	Description   *string            `json:"description,omitempty"`
	Enabled       *bool              `json:"enabled,omitempty"`
	Ordered       *bool              `json:"ordered,omitempty"`
	MaxInFlight   *int               `json:"max_in_flight,omitempty"`
	RateLimit     *float64           `json:"rate_limit,omitempty"`
	Timeout       *string            `json:"timeout,omitempty"`
	RetrySchedule *[]string          `json:"retry_schedule,omitempty"`
	Headers       *map[string]string `json:"headers,omitempty"`
	// SensitiveHeaders goes with Headers: the names among them whose
	// values are sealed at rest, never shown and elided in the delivery
	// log. A sensitive header sent with an empty value keeps the value
	// it has.
	SensitiveHeaders *[]string `json:"sensitive_headers,omitempty"`
	DisableAfter     *string   `json:"disable_after,omitempty"`
}

// SubscriptionCreate is the body of POST …/subscriptions: URL is
// required; unset fields take the server's defaults. Secret (default
// generated) and FromSeq (default: the store's end; set it to replay the
// log from there) can only be set here.
type SubscriptionCreate struct {
	SubscriptionPatch
	Secret  *string `json:"secret,omitempty"`
	FromSeq *uint64 `json:"from_seq,omitempty"`
}

// Ptr returns a pointer to v, for the optional fields of
// SubscriptionPatch and SubscriptionCreate.
func Ptr[T any](v T) *T { return &v }

// RotateSecret is the body of POST …/secret/rotate. Secret "" generates
// one; Grace "" is the default (24h), "0s" none: how long the old secret
// keeps signing beside the new one.
type RotateSecret struct {
	Secret string `json:"secret,omitempty"`
	Grace  string `json:"grace,omitempty"`
}

// DeliveryStatus is the outcome of an attempt, or pending for a delivery
// waiting in the retry set.
type DeliveryStatus string

// Delivery statuses (also the ?status= filter of the delivery log).
const (
	DeliverySucceeded DeliveryStatus = "succeeded" // 2xx within the timeout
	DeliveryFailed    DeliveryStatus = "failed"    // will be retried at NextAttemptAt
	DeliveryDead      DeliveryStatus = "dead"      // failed for the last time
	DeliveryPending   DeliveryStatus = "pending"   // waiting in the retry set
)

// Delivery is one entry of a subscription's delivery log: an attempt
// (status succeeded, failed or dead), or, in a status=pending list, a
// delivery waiting in the retry set (EventID, Seq, Attempts,
// NextAttemptAt, LastError, Manual). Signature header values are elided.
type Delivery struct {
	// ID is the attempt's id within the subscription (0 for a pending
	// entry and for a test attempt, which is not recorded).
	ID      uint64         `json:"id,omitempty"`
	EventID string         `json:"event_id"`
	Seq     uint64         `json:"seq"`
	Status  DeliveryStatus `json:"status"`
	// Attempt numbers an attempt (1 for the first try of the event).
	Attempt         int               `json:"attempt,omitempty"`
	At              time.Time         `json:"at,omitzero"`
	DurationMS      float64           `json:"duration_ms,omitempty"`
	Manual          bool              `json:"manual,omitempty"`
	RequestHeaders  map[string]string `json:"request_headers,omitempty"`
	ResponseStatus  int               `json:"response_status,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	ResponseBody    string            `json:"response_body,omitempty"`
	Error           string            `json:"error,omitempty"`
	NextAttemptAt   time.Time         `json:"next_attempt_at,omitzero"`
	// Pending entries: attempts made so far and the last one's error.
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// DeliveryPage is one page of the delivery log; Next is the After of the
// following page, 0 when this is the last.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	Next       uint64     `json:"next"`
}

// DeliveryQuery selects from the delivery log.
type DeliveryQuery struct {
	// Status filters: "" every attempt; succeeded or failed attempts;
	// dead: the last attempt of each dead delivery; pending: the retry
	// set.
	Status DeliveryStatus
	// After is an attempt id (a seq for dead and pending).
	After       uint64
	Limit       int // 1-MaxLimit; 0 is DefaultLimit
	Consistency Consistency
}

// EventDeliveries is every kept attempt for one event.
type EventDeliveries struct {
	EventID  string     `json:"event_id"`
	Attempts []Delivery `json:"attempts"`
}

// Redelivery is the answer to a redeliver: the event is in the retry set,
// due now.
type Redelivery struct {
	SubscriptionID string         `json:"subscription_id"`
	EventID        string         `json:"event_id"`
	Seq            uint64         `json:"seq"`
	Status         DeliveryStatus `json:"status"`
	NextAttemptAt  time.Time      `json:"next_attempt_at"`
}

// Replay is the body of POST …/replay: exactly one of FromSeq (≥ 1) and
// Since (an RFC 3339 time); Only "dead" re-queues only dead deliveries.
type Replay struct {
	FromSeq uint64 `json:"from_seq,omitempty"`
	Since   string `json:"since,omitempty"`
	Only    string `json:"only,omitempty"`
}

// ReplayResult says what a replay queued: dead deliveries (only dead) or
// log positions the cursor moved back.
type ReplayResult struct {
	FromSeq uint64 `json:"from_seq"`
	Queued  uint64 `json:"queued"`
}

// Node states in a Cluster answer.
const (
	StateLeader      = "leader"
	StateFollower    = "follower"
	StateCandidate   = "candidate"
	StateUnreachable = "unreachable" // the leader's heartbeats to it fail
	StateUnknown     = "unknown"     // a follower's view of its peers
	StateShutdown    = "shutdown"    // the answering node is stopping
)

// Node is one cluster member.
type Node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	State    string `json:"state"`
	Suffrage string `json:"suffrage"` // voter, nonvoter, staging
}

// Cluster is the answer of GET /v1/cluster: ID is the node that answered.
type Cluster struct {
	ID             string `json:"id"`
	Leader         string `json:"leader"`
	LeaderHTTPAddr string `json:"leader_http_addr"`
	Nodes          []Node `json:"nodes"`
	CommitIndex    uint64 `json:"commit_index"`
	AppliedIndex   uint64 `json:"applied_index"`
}

// JoinRequest adds (or updates, or promotes) a member. Voter nil is true.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    *bool  `json:"voter,omitempty"`
}

// JoinResult is the answer to a join.
type JoinResult struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
}

// RemoveResult is the answer to DELETE /v1/cluster/nodes/{id}.
type RemoveResult struct {
	Removed string `json:"removed"`
}

// TransferRequest is the body of POST /v1/cluster/leader/transfer; To ""
// is any up-to-date voter.
type TransferRequest struct {
	To string `json:"to,omitempty"`
}

// TransferResult names the new leader.
type TransferResult struct {
	Leader string `json:"leader"`
}

// Health is the answer of /healthz ("ok") and /readyz ("ready").
type Health struct {
	Status string `json:"status"`
}
