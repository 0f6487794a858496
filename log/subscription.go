package log

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-io/herald/internal/secrets"
)

// HeraldStore is the reserved store that receives Herald's own operational
// events (herald.subscription.disabled, herald.delivery.dead,
// herald.subscription.recovered). Only the FSM appends to it; it can be
// read and subscribed to like any other store.
const HeraldStore = "_herald"

// SubStatus is a subscription's delivery status.
type SubStatus string

// Subscription statuses.
const (
	SubActive   SubStatus = "active"   // delivering
	SubPaused   SubStatus = "paused"   // stopped by a user; resumes from its cursor
	SubDisabled SubStatus = "disabled" // stopped by Herald (DisabledReason says why)
)

// Reasons a subscription was disabled.
const (
	DisabledGone      = "gone"               // the endpoint answered 410 Gone
	DisabledRequested = "receiver_requested" // the endpoint sent webhook-delivery: disable
	DisabledFailing   = "failing"            // failed continuously for DisableAfter
)

// Limits and defaults of subscription fields.
const (
	DefaultMaxInFlight  = 16
	MaxMaxInFlight      = 256
	DefaultTimeout      = 15 * time.Second
	MaxTimeout          = 60 * time.Second
	MinRetryDelay       = 100 * time.Millisecond
	MaxRetryDelay       = 7 * 24 * time.Hour
	MaxRetrySchedule    = 32
	DefaultDisableAfter = 120 * time.Hour
	MinDisableAfter     = time.Second
	MaxTypesPerSub      = 64
	MaxHeaders          = 32
	MaxHeaderValueLen   = 1024
	MaxDescriptionLen   = 1024
	MaxURLLen           = 2048
	MaxRateLimit        = 100000
	MaxSecrets          = 8
)

// DefaultRetrySchedule is the Standard Webhooks example schedule: the
// delays before attempts 2..10.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Secret is one signing secret of a subscription.
type Secret struct {
	Key string `json:"key"` // "whsec_" + base64 of 24-64 bytes
	// ExpiresAt (unix ns) ends a rotated-out secret's grace period; 0 for
	// the current secret.
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// Subscription is a webhook endpoint registered on a store, together with
// its delivery state. The configuration fields are changed only by API
// commands (each bumps Gen); the delivery-state fields only by the
// dispatcher's result batches.
//
// Its JSON form is a storage and replication format, not just an API
// detail: the log stores subscriptions as JSON (encodeSub), and raftstore's
// create-subscription command carries json.Marshal(Subscription). A
// renamed or removed tag makes a node misread entries and files written
// before; raftstore's golden test pins the tags (see raftstore/DESIGN.md).
type Subscription struct {
	ID            string            `json:"id"`
	Store         string            `json:"store"`
	URL           string            `json:"url"`
	Types         []string          `json:"types,omitempty"`
	Description   string            `json:"description,omitempty"`
	Ordered       bool              `json:"ordered,omitempty"`
	MaxInFlight   int               `json:"max_in_flight"`
	RateLimit     float64           `json:"rate_limit,omitempty"` // deliveries/s, 0 = none
	Timeout       time.Duration     `json:"timeout"`
	RetrySchedule []time.Duration   `json:"retry_schedule"`
	Headers       map[string]string `json:"headers,omitempty"`
	// SensitiveHeaders names the headers whose values are sealed
	// (internal/secrets): never shown, never recorded in plain text.
	SensitiveHeaders []string      `json:"sensitive_headers,omitempty"`
	DisableAfter     time.Duration `json:"disable_after"`
	CreatedAt        int64         `json:"created_at"`
	UpdatedAt        int64         `json:"updated_at"`
	Status           SubStatus     `json:"status"`
	// DisabledReason is one of the Disabled* constants when Status is
	// SubDisabled.
	DisabledReason string   `json:"disabled_reason,omitempty"`
	Secrets        []Secret `json:"secrets"` // the current secret first
	// Gen counts API changes; the dispatcher restarts a subscription's
	// loop when it changes.
	Gen uint64 `json:"gen"`
	// Epoch counts cursor rewinds (replays): result batches computed under
	// an older Epoch do not move the cursor or the failure state.
	Epoch uint64 `json:"epoch"`

	// Delivery state.

	// Cursor: every event with seq <= Cursor has been handed off: its
	// delivery succeeded, died, was skipped (type did not match) or is in
	// the retry set.
	Cursor uint64 `json:"cursor"`
	// FailingSince (unix ns) is the time of the first failure of the
	// current run of failures; 0 when the last attempt succeeded.
	FailingSince int64 `json:"failing_since,omitempty"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures,omitempty"`
	// BreakerOpen: the endpoint keeps failing; the dispatcher sends one
	// probe at a time until one succeeds.
	BreakerOpen bool `json:"breaker_open,omitempty"`
	// NextAttempt is the id the next recorded attempt gets (ids start at
	// 1); OldestAttempt the lowest id still kept.
	NextAttempt   uint64 `json:"next_attempt"`
	OldestAttempt uint64 `json:"oldest_attempt"`
}

// ApplyDefaults fills unset fields with their defaults.
func (s *Subscription) ApplyDefaults() {
	if s.Ordered {
		s.MaxInFlight = 1
	} else if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.RetrySchedule == nil {
		s.RetrySchedule = append([]time.Duration(nil), DefaultRetrySchedule...)
	}
	if s.DisableAfter == 0 {
		s.DisableAfter = DefaultDisableAfter
	}
	if s.Status == "" {
		s.Status = SubActive
	}
}

// reservedHeaders are set by Herald on every request and cannot be
// overridden by a subscription's static headers.
var reservedHeaders = map[string]bool{
	"host": true, "content-type": true, "content-length": true, "user-agent": true,
	"transfer-encoding": true, "connection": true, "x-herald-signature": true,
}

// Validate checks a subscription's configuration. It is pure, so the FSM
// re-checks merged patches with the same verdict on every replica.
func (s *Subscription) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSubscription, fmt.Sprintf(format, args...))
	}
	if err := ValidateStoreName(s.Store); err != nil {
		return err
	}
	if err := ValidateURL(s.URL); err != nil {
		return err
	}
	if len(s.Types) > MaxTypesPerSub {
		return bad("types: at most %d patterns", MaxTypesPerSub)
	}
	if _, err := ParsePatterns(s.Types); err != nil {
		return fmt.Errorf("%w: types: %w", ErrInvalidSubscription, err)
	}
	if len(s.Description) > MaxDescriptionLen {
		return bad("description: at most %d bytes", MaxDescriptionLen)
	}
	if s.MaxInFlight < 1 || s.MaxInFlight > MaxMaxInFlight {
		return bad("max_in_flight must be 1-%d", MaxMaxInFlight)
	}
	if s.Ordered && s.MaxInFlight != 1 {
		return bad("max_in_flight must be 1 for an ordered subscription")
	}
	if s.RateLimit < 0 || s.RateLimit > MaxRateLimit {
		return bad("rate_limit must be 0-%d deliveries/s", MaxRateLimit)
	}
	if s.Timeout < 100*time.Millisecond || s.Timeout > MaxTimeout {
		return bad("timeout must be 100ms-%s", MaxTimeout)
	}
	if len(s.RetrySchedule) > MaxRetrySchedule {
		return bad("retry_schedule: at most %d delays", MaxRetrySchedule)
	}
	for _, d := range s.RetrySchedule {
		if d < MinRetryDelay || d > MaxRetryDelay {
			return bad("retry_schedule: every delay must be %s-%s", MinRetryDelay, MaxRetryDelay)
		}
	}
	if len(s.Headers) > MaxHeaders {
		return bad("headers: at most %d", MaxHeaders)
	}
	for k, v := range s.Headers {
		if !validHeaderName(k) {
			return bad("headers: %q is not a valid header name", k)
		}
		lk := strings.ToLower(k)
		if reservedHeaders[lk] || strings.HasPrefix(lk, "webhook-") || strings.HasPrefix(lk, "herald-") {
			return bad("headers: %q is set by Herald", k)
		}
		if s.IsSensitive(k) {
			if _, err := secrets.Parse(v); err != nil || len(v) > maxSealedHeaderLen {
				return bad("headers: the value of sensitive header %.100q is not sealed", k)
			}
			continue
		}
		if err := ValidateHeaderValue(k, v); err != nil {
			return err
		}
	}
	if len(s.SensitiveHeaders) > MaxHeaders {
		return bad("sensitive_headers: at most %d", MaxHeaders)
	}
	for _, name := range s.SensitiveHeaders {
		if _, ok := s.HeaderKey(name); !ok {
			return bad("sensitive_headers: %.100q is not one of headers", name)
		}
	}
	if s.DisableAfter < MinDisableAfter {
		return bad("disable_after must be at least %s", MinDisableAfter)
	}
	switch s.Status {
	case SubActive, SubPaused, SubDisabled:
	default:
		return bad("status %q", s.Status)
	}
	if len(s.Secrets) == 0 || len(s.Secrets) > MaxSecrets {
		return bad("a subscription has 1-%d secrets", MaxSecrets)
	}
	for _, sec := range s.Secrets {
		if err := ValidateStoredSecret(sec.Key); err != nil {
			return err
		}
	}
	return nil
}

// ValidateURL checks an endpoint URL: absolute http or https with a host,
// no user info, at most MaxURLLen bytes.
func ValidateURL(raw string) error {
	if raw == "" || len(raw) > MaxURLLen {
		return fmt.Errorf("%w: url must be 1-%d bytes", ErrInvalidSubscription, MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url: %v", ErrInvalidSubscription, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: url must be http or https", ErrInvalidSubscription)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: url must have a host", ErrInvalidSubscription)
	}
	if u.User != nil {
		return fmt.Errorf("%w: url must not carry credentials; use headers", ErrInvalidSubscription)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%w: url must not have a fragment", ErrInvalidSubscription)
	}
	return nil
}

// maxSealedHeaderLen bounds a sealed header value (a value of
// MaxHeaderValueLen bytes seals to about 1,430).
const maxSealedHeaderLen = 2048

// ValidateHeaderValue checks a static header's plaintext value.
func ValidateHeaderValue(name, v string) error {
	if len(v) > MaxHeaderValueLen || !validHeaderValue(v) {
		return fmt.Errorf("%w: headers: value of %.100q must be at most %d bytes of UTF-8 without control characters (tab allowed)", ErrInvalidSubscription, name, MaxHeaderValueLen)
	}
	return nil
}

// IsSensitive reports whether header name (any case) is sensitive.
func (s *Subscription) IsSensitive(name string) bool {
	for _, n := range s.SensitiveHeaders {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// HeaderKey returns the key of Headers that is name in any case.
func (s *Subscription) HeaderKey(name string) (string, bool) {
	if _, ok := s.Headers[name]; ok {
		return name, true
	}
	for k := range s.Headers {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

// ValidateSecret checks a signing secret: "whsec_" followed by the base64
// of 24-64 bytes.
func ValidateSecret(secret string) error {
	const prefix = "whsec_"
	if !strings.HasPrefix(secret, prefix) {
		return fmt.Errorf("%w: secret must start with %q", ErrInvalidSubscription, prefix)
	}
	key, err := base64.StdEncoding.DecodeString(secret[len(prefix):])
	if err != nil || len(key) < 24 || len(key) > 64 {
		return fmt.Errorf("%w: secret must be %q followed by the base64 of 24-64 bytes", ErrInvalidSubscription, prefix)
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return http.CanonicalHeaderKey(k) != ""
}

// ActiveSecrets returns the secrets that sign a request sent at now (unix
// ns): the current one and those still in their grace period.
func (s *Subscription) ActiveSecrets(now int64) []string {
	out := make([]string, 0, len(s.Secrets))
	for _, sec := range s.Secrets {
		if sec.ExpiresAt == 0 || sec.ExpiresAt > now {
			out = append(out, sec.Key)
		}
	}
	return out
}

// SubPatch is a partial update; nil fields are left alone. Like
// Subscription's, its JSON tags are part of the replicated format (raftstore's
// patch-subscription command carries it as JSON).
type SubPatch struct {
	URL           *string            `json:"url,omitempty"`
	Types         *[]string          `json:"types,omitempty"`
	Description   *string            `json:"description,omitempty"`
	Ordered       *bool              `json:"ordered,omitempty"`
	MaxInFlight   *int               `json:"max_in_flight,omitempty"`
	RateLimit     *float64           `json:"rate_limit,omitempty"`
	Timeout       *time.Duration     `json:"timeout,omitempty"`
	RetrySchedule *[]time.Duration   `json:"retry_schedule,omitempty"`
	Headers       *map[string]string `json:"headers,omitempty"`
	// SensitiveHeaders goes with Headers: the names among them whose
	// values are sealed (nil with Headers set: none).
	SensitiveHeaders *[]string      `json:"sensitive_headers,omitempty"`
	DisableAfter     *time.Duration `json:"disable_after,omitempty"`
	// Status is SubActive (enable) or SubPaused (pause).
	Status *SubStatus `json:"status,omitempty"`
}

// Apply merges p into s. Enabling a disabled or paused subscription clears
// its failure state, so the breaker starts closed.
func (p *SubPatch) Apply(s *Subscription) {
	if p.URL != nil {
		s.URL = *p.URL
	}
	if p.Types != nil {
		s.Types = append([]string(nil), (*p.Types)...)
	}
	if p.Description != nil {
		s.Description = *p.Description
	}
	if p.Ordered != nil {
		s.Ordered = *p.Ordered
		if s.Ordered {
			s.MaxInFlight = 1
		} else if p.MaxInFlight == nil && s.MaxInFlight == 1 {
			s.MaxInFlight = DefaultMaxInFlight
		}
	}
	if p.MaxInFlight != nil {
		s.MaxInFlight = *p.MaxInFlight
	}
	if p.RateLimit != nil {
		s.RateLimit = *p.RateLimit
	}
	if p.Timeout != nil {
		s.Timeout = *p.Timeout
	}
	if p.RetrySchedule != nil {
		s.RetrySchedule = append([]time.Duration{}, (*p.RetrySchedule)...)
	}
	if p.Headers != nil {
		s.Headers = make(map[string]string, len(*p.Headers))
		for k, v := range *p.Headers {
			s.Headers[k] = v
		}
		s.SensitiveHeaders = nil
		if p.SensitiveHeaders != nil {
			s.SensitiveHeaders = slices.Clone(*p.SensitiveHeaders)
		}
	}
	if p.DisableAfter != nil {
		s.DisableAfter = *p.DisableAfter
	}
	if p.Status != nil && *p.Status != s.Status {
		s.Status = *p.Status
		if s.Status == SubActive {
			s.DisabledReason = ""
			s.FailingSince, s.Failures, s.BreakerOpen = 0, 0, false
		}
	}
}

// Outcome of one delivery attempt.
type Outcome string

// Attempt outcomes.
const (
	OutcomeSucceeded Outcome = "succeeded" // 2xx within the timeout
	OutcomeFailed    Outcome = "failed"    // will be retried (NextAt)
	OutcomeDead      Outcome = "dead"      // failed for the last time
)

// Attempt is one recorded delivery attempt.
type Attempt struct {
	ID       uint64 `json:"id"` // per subscription, assigned when recorded
	EventID  string `json:"event_id"`
	Seq      uint64 `json:"seq"`
	Attempt  int    `json:"attempt"`  // 1 for the first try of the event
	At       int64  `json:"at"`       // unix ns when the request was sent
	Duration int64  `json:"duration"` // ns until the response (or error)
	Manual   bool   `json:"manual,omitempty"`
	// RequestHeaders as sent, with signature values elided.
	RequestHeaders  [][2]string `json:"request_headers,omitempty"`
	Status          int         `json:"status,omitempty"` // HTTP status; 0 when none
	ResponseHeaders [][2]string `json:"response_headers,omitempty"`
	ResponseBody    string      `json:"response_body,omitempty"` // first 4 KiB
	Error           string      `json:"error,omitempty"`
	Outcome         Outcome     `json:"outcome"`
	NextAt          int64       `json:"next_at,omitempty"` // failed: when the next attempt is due
}

// MaxResponseBody is how much of a response body an attempt keeps.
const MaxResponseBody = 4096

// RetryEntry is a delivery waiting in a subscription's retry set.
type RetryEntry struct {
	Seq       uint64 `json:"seq"`
	EventID   string `json:"event_id"`
	Attempts  int    `json:"attempts"` // attempts made so far
	NextAt    int64  `json:"next_at"`  // unix ns
	LastError string `json:"last_error,omitempty"`
	Manual    bool   `json:"manual,omitempty"` // a redelivery asked for through the API
}

// DeliveryState is the dispatcher-owned failure state of a subscription.
type DeliveryState struct {
	FailingSince int64
	Failures     int
	BreakerOpen  bool
}

// SubDelivery is one subscription's part of a DeliveryBatch.
type SubDelivery struct {
	ID    string
	Epoch uint64 // the Epoch the dispatcher worked under
	// Cursor moves the subscription's cursor forward (0 = unchanged);
	// ignored when Epoch is stale.
	Cursor   uint64
	Attempts []Attempt
	// State replaces the failure state when set and Epoch is current.
	State *DeliveryState
	// Disable disables an active subscription with this reason.
	Disable string
}

// DeliveryBatch is the dispatcher's results, committed as one Raft entry.
type DeliveryBatch struct {
	Now  int64 // unix ns, decided by the leader
	Keep int   // attempts kept per subscription (older ones are pruned)
	Subs []SubDelivery
	// Events are operational events appended to HeraldStore.
	Events []NewEvent
}

// DefaultKeepAttempts is how many attempts per subscription the delivery
// log keeps at least.
const DefaultKeepAttempts = 100000

func encodeSub(s *Subscription) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("log: encode subscription: %v", err)) // plain data: cannot fail
	}
	return b
}

func decodeSub(v []byte) (Subscription, error) {
	var s Subscription
	if err := json.Unmarshal(v, &s); err != nil {
		return s, fmt.Errorf("%w: subscription: %v", ErrCorrupt, err)
	}
	return s, nil
}

// validHeaderValue reports whether v can be sent as a header value: UTF-8
// without control characters other than tab (a value with \x01 was once
// accepted, and then every delivery failed).
func validHeaderValue(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
