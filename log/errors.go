package log

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test with errors.Is; messages carry detail via %w.
var (
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("log: database closed")
	// ErrStoreNotFound means the store has no events yet (stores are created
	// by their first publish).
	ErrStoreNotFound = errors.New("store not found")
	// ErrEventNotFound means no event with that id exists in the store.
	ErrEventNotFound = errors.New("event not found")
	// ErrInvalidStore means a store name does not match [a-z0-9][a-z0-9._-]{0,63}.
	ErrInvalidStore = errors.New("invalid store name")
	// ErrInvalidEvent means an event failed validation (type, id, version,
	// data); nothing of the request it belongs to was stored.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrInvalidPattern means an event-type pattern is malformed.
	ErrInvalidPattern = errors.New("invalid type pattern")
	// ErrCorrupt means a record on disk could not be decoded.
	ErrCorrupt = errors.New("log: corrupt record")
	// ErrLocked means the event log's file is held by another process:
	// another herald node (or offline command) runs on the same data
	// directory. Open gives up after half a second instead of waiting.
	ErrLocked = errors.New("data directory in use by another herald process")
)

// Subscription errors.
var (
	// ErrInvalidSubscription means a subscription's configuration failed
	// validation; nothing was changed.
	ErrInvalidSubscription = errors.New("invalid subscription")
	// ErrSubscriptionNotFound means no subscription has that id.
	ErrSubscriptionNotFound = errors.New("subscription not found")
	// ErrSubscriptionExists means a subscription with that id exists.
	ErrSubscriptionExists = errors.New("subscription exists")
)

// ErrCompacted means the events asked for were removed by retention; a
// CompactedError carries the first seq still stored.
var ErrCompacted = errors.New("compacted")

// CompactedError says where a compacted store now starts.
type CompactedError struct {
	Store    string
	FirstSeq uint64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("store %s: events before seq %d were removed by retention; read from after=%d", e.Store, e.FirstSeq, e.FirstSeq-1)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }
