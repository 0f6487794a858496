package api

// Headers of the API.
const (
	// HeaderIdempotencyKey on a single-event publish makes a retry with
	// the same key return the original event (200) and store nothing.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderForwarded marks a request one node sent to another; the
	// receiving node answers it itself and never relays it again.
	HeaderForwarded = "Herald-Forwarded"
	// HeaderForwardedFor names the API key (its id) a node acts for when
	// it passes a request on to the leader over the cluster port, or
	// ForwardedAnonymous. Only the cluster port reads it: members are
	// authenticated there by their certificates.
	HeaderForwardedFor = "Herald-Forwarded-For"
	// HeaderRequestID names a request in every node's access log: taken
	// from the client when it sends a valid one (1-128 characters of
	// A-Z a-z 0-9 . _ - :), made otherwise, returned with the answer and
	// passed on when a node forwards the request.
	HeaderRequestID = "X-Request-Id"
	// ForwardedAnonymous is HeaderForwardedFor's value for a request that
	// a node running without authentication passes on.
	ForwardedAnonymous = "anonymous"
	// HeaderForwardedTo names the leader a follower relayed the request
	// to.
	HeaderForwardedTo = "Herald-Forwarded-To"
	// HeaderFirstSeq comes with 410 compacted: the first seq still stored.
	HeaderFirstSeq = "Herald-First-Seq"
	// HeaderRetryAfter comes with every 503: seconds to wait.
	HeaderRetryAfter = "Retry-After"
	// HeaderPrefer with PreferMinimal on a publish asks the node to leave
	// each event's data out of its answer (RFC 7240); the node then says
	// HeaderPreferenceApplied: PreferMinimal.
	HeaderPrefer            = "Prefer"
	HeaderPreferenceApplied = "Preference-Applied"
	PreferMinimal           = "return=minimal"
)

// Headers of the webhook requests Herald sends (see docs/api.md, "The
// request Herald sends"). The first three are the Standard Webhooks ones.
const (
	HeaderWebhookID        = "webhook-id"        // the event id: the same on every retry
	HeaderWebhookTimestamp = "webhook-timestamp" // unix seconds of this attempt
	HeaderWebhookSignature = "webhook-signature" // "v1,<base64>" per active secret
	HeaderBodySignature    = "X-Herald-Signature"
	HeaderAttempt          = "Herald-Attempt"
	HeaderStore            = "Herald-Store"
	HeaderSeq              = "Herald-Seq"
	HeaderSubscription     = "Herald-Subscription"
	// HeaderDeliveryControl is the response header a receiver may send:
	// "disable" disables the subscription, "abort-message" makes the
	// event dead.
	HeaderDeliveryControl = "webhook-delivery"
)
