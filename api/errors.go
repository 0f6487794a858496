package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrorCode is the stable code of an API error; the HTTP status is fixed
// per code (Status).
type ErrorCode string

// Error codes. docs/api.md explains each; a test keeps that table and
// this one identical.
const (
	CodeInvalidJSON          ErrorCode = "invalid_json"           // 400: not one JSON object
	CodeInvalidEvent         ErrorCode = "invalid_event"          // 400: a malformed event
	CodeInvalidStore         ErrorCode = "invalid_store"          // 400: a malformed store name
	CodeInvalidParameter     ErrorCode = "invalid_parameter"      // 400: a malformed query parameter
	CodeInvalidSubscription  ErrorCode = "invalid_subscription"   // 400: a malformed subscription
	CodeInvalidReplay        ErrorCode = "invalid_replay"         // 400: a malformed replay body
	CodeInvalidRetention     ErrorCode = "invalid_retention"      // 400: a malformed retention body
	CodeInvalidMember        ErrorCode = "invalid_member"         // 400: a malformed join or transfer body
	CodeReservedStore        ErrorCode = "reserved_store"         // 400: a publish to _herald
	CodeInvalidKey           ErrorCode = "invalid_key"            // 400: a malformed API key request
	CodeInvalidToken         ErrorCode = "invalid_token"          // 400: a malformed join token request
	CodeBlockedDestination   ErrorCode = "blocked_destination"    // 400: a URL or address Herald will not connect to
	CodeUnauthorized         ErrorCode = "unauthorized"           // 401: no key, or an unknown, revoked or expired one
	CodeForbidden            ErrorCode = "forbidden"              // 403: the key lacks the grant, or the origin is not allowed
	CodeNotFound             ErrorCode = "not_found"              // 404: no such store, event, subscription, member, key or route
	CodeMethodNotAllowed     ErrorCode = "method_not_allowed"     // 405: the route exists for other methods
	CodeConflict             ErrorCode = "conflict"               // 409: conflicts with the current state
	CodeCompacted            ErrorCode = "compacted"              // 410: removed by retention
	CodePayloadTooLarge      ErrorCode = "payload_too_large"      // 413: body or batch too large
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type" // 415: not JSON
	CodeHeadersTooLarge      ErrorCode = "headers_too_large"      // 431: the request line and headers are over MaxHeaderBytes
	CodeRateLimited          ErrorCode = "rate_limited"           // 429: too many requests of this kind; with Retry-After
	CodeInternal             ErrorCode = "internal"               // 500: a bug
	CodeNoLeader             ErrorCode = "no_leader"              // 503: no leader, or it is unreachable
	CodeUnavailable          ErrorCode = "unavailable"            // 503: shutting down, or the outcome is unknown
	CodeTimeout              ErrorCode = "timeout"                // 503: did not finish in time
	CodeNotReady             ErrorCode = "not_ready"              // 503: from /readyz only
)

// codeStatus is the HTTP status of every code.
var codeStatus = map[ErrorCode]int{
	CodeInvalidJSON:          http.StatusBadRequest,
	CodeInvalidEvent:         http.StatusBadRequest,
	CodeInvalidStore:         http.StatusBadRequest,
	CodeInvalidParameter:     http.StatusBadRequest,
	CodeInvalidSubscription:  http.StatusBadRequest,
	CodeInvalidReplay:        http.StatusBadRequest,
	CodeInvalidRetention:     http.StatusBadRequest,
	CodeInvalidMember:        http.StatusBadRequest,
	CodeReservedStore:        http.StatusBadRequest,
	CodeInvalidKey:           http.StatusBadRequest,
	CodeInvalidToken:         http.StatusBadRequest,
	CodeBlockedDestination:   http.StatusBadRequest,
	CodeUnauthorized:         http.StatusUnauthorized,
	CodeForbidden:            http.StatusForbidden,
	CodeNotFound:             http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeConflict:             http.StatusConflict,
	CodeCompacted:            http.StatusGone,
	CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeHeadersTooLarge:      http.StatusRequestHeaderFieldsTooLarge,
	CodeRateLimited:          http.StatusTooManyRequests,
	CodeInternal:             http.StatusInternalServerError,
	CodeNoLeader:             http.StatusServiceUnavailable,
	CodeUnavailable:          http.StatusServiceUnavailable,
	CodeTimeout:              http.StatusServiceUnavailable,
	CodeNotReady:             http.StatusServiceUnavailable,
}

// Status is the HTTP status that goes with the code (500 for a code this
// version does not know).
func (c ErrorCode) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Known reports whether the code is one of this version's.
func (c ErrorCode) Known() bool { _, ok := codeStatus[c]; return ok }

// Retryable reports whether a request that failed with the code may
// succeed later unchanged (the 503 codes, which come with Retry-After).
func (c ErrorCode) Retryable() bool { return c.Status() == http.StatusServiceUnavailable }

// Codes lists every error code.
func Codes() []ErrorCode {
	out := make([]ErrorCode, 0, len(codeStatus))
	for c := range codeStatus {
		out = append(out, c)
	}
	return out
}

// ErrorBody is the JSON body of every error answer:
// {"error":{"code":"...","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody.
type ErrorDetail struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// Error is an error answer from a node, as Client methods return it.
type Error struct {
	// StatusCode is the HTTP status; Code and Message come from the body
	// (Code is "" when the body was not a Herald error, e.g. from a proxy).
	StatusCode int
	Code       ErrorCode
	Message    string
	// RetryAfter is the Retry-After the node sent (0 when none).
	RetryAfter time.Duration
	// FirstSeq is where a compacted store now starts (Herald-First-Seq).
	FirstSeq uint64
	// Addr is the node that answered.
	Addr string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool { return e.StatusCode == http.StatusServiceUnavailable }

// Is makes errors.Is(err, &Error{Code: c}) true for an error with code c,
// so callers can test codes without a type assertion.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code && (t.StatusCode == 0 || t.StatusCode == e.StatusCode)
}

// CodeOf returns the code of an *Error in err's chain, "" when there is
// none (a transport error, a canceled context).
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsCode reports whether err is an API error with the code.
func IsCode(err error, code ErrorCode) bool { return CodeOf(err) == code }
