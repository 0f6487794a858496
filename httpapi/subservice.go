package httpapi

import (
	"context"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// CreateSubscriptionRequest creates a subscription. Sub carries the
// client's configuration with defaults applied and validated; the Service
// assigns ID, CreatedAt/UpdatedAt and, when Sub.Secrets is empty, a new
// secret.
type CreateSubscriptionRequest struct {
	Sub hlog.Subscription
	// FromSeq starts delivery at this seq (replaying the log from there);
	// 0 starts at the store's current end.
	FromSeq uint64
}

// ReplayRequest re-sends events of a store to a subscription.
type ReplayRequest struct {
	FromSeq uint64    // first seq to re-send (0 when Since is used)
	Since   time.Time // or: from the first event with a timestamp >= Since
	// OnlyDead re-sends only deliveries that died.
	OnlyDead bool
}

// ReplayResult says what a replay queued.
type ReplayResult struct {
	FromSeq uint64 `json:"from_seq"`
	// Queued is the number of dead deliveries queued (OnlyDead) or of
	// log positions the cursor moved back.
	Queued uint64 `json:"queued"`
}

// DeliveryStatus filters the delivery log.
type DeliveryStatus string

// Delivery log filters.
const (
	DeliveryAll       DeliveryStatus = ""
	DeliverySucceeded DeliveryStatus = "succeeded" // attempts that succeeded
	DeliveryFailed    DeliveryStatus = "failed"    // failed attempts that will be retried
	DeliveryDead      DeliveryStatus = "dead"      // last attempts of dead deliveries
	DeliveryPending   DeliveryStatus = "pending"   // the retry set
)

// DeliveriesQuery selects from a subscription's delivery log.
type DeliveriesQuery struct {
	Status      DeliveryStatus
	After       uint64 // attempt id; a seq for DeliveryDead and DeliveryPending
	Limit       int    // 1-1000, default 100
	Consistency Consistency
}

// DeliveriesPage is one page of the delivery log. Attempts is set for
// every status but DeliveryPending, which fills Pending.
type DeliveriesPage struct {
	Attempts []hlog.Attempt
	Pending  []hlog.RetryEntry
	// Next is the After of the next page; 0 when this is the last.
	Next uint64
}

// SubscriptionService is the subscription half of Service. Every method
// that takes a store answers hlog.ErrSubscriptionNotFound when the
// subscription belongs to another store. Writes are leader-only: a
// follower answers ErrNotLeader and the API forwards the request.
type SubscriptionService interface {
	CreateSubscription(ctx context.Context, req CreateSubscriptionRequest) (hlog.Subscription, error)
	ListSubscriptions(ctx context.Context, store string, c Consistency) ([]hlog.Subscription, error)
	GetSubscription(ctx context.Context, store, id string, c Consistency) (hlog.Subscription, error)
	// UpdateSubscription applies a partial update (also pause/enable via
	// Status); an invalid result is hlog.ErrInvalidSubscription.
	UpdateSubscription(ctx context.Context, store, id string, p hlog.SubPatch) (hlog.Subscription, error)
	DeleteSubscription(ctx context.Context, store, id string) error
	// RotateSecret makes secret (a new one when "") current; the old one
	// keeps signing for grace. The result's Secrets[0] is the new secret.
	RotateSecret(ctx context.Context, store, id, secret string, grace time.Duration) (hlog.Subscription, error)
	// Redeliver queues the event (any outcome) for delivery now.
	Redeliver(ctx context.Context, store, id, eventID string) (hlog.RetryEntry, error)
	Replay(ctx context.Context, store, id string, req ReplayRequest) (ReplayResult, error)
	// TestSubscription sends a herald.test event (not stored) to the
	// endpoint now and returns the attempt.
	TestSubscription(ctx context.Context, store, id string) (hlog.Attempt, error)
	Deliveries(ctx context.Context, store, id string, q DeliveriesQuery) (DeliveriesPage, error)
	// EventDeliveries returns every kept attempt for one event.
	EventDeliveries(ctx context.Context, store, id, eventID string, c Consistency) ([]hlog.Attempt, error)
}
