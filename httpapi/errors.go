package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// requestError is a problem with the HTTP request itself (syntax, size,
// media type), found by the API before a service is called.
type requestError struct {
	code api.ErrorCode
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func reqErr(code api.ErrorCode, format string, args ...any) error {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errorCodes maps the services' sentinel errors to codes; the first match
// wins. The HTTP status comes with the code (api.ErrorCode.Status).
var errorCodes = []struct {
	err  error
	code api.ErrorCode
}{
	{hlog.ErrCompacted, api.CodeCompacted},
	{hlog.ErrReservedStore, api.CodeReservedStore},
	{hlog.ErrInvalidSubscription, api.CodeInvalidSubscription},
	{hlog.ErrInvalidRetention, api.CodeInvalidRetention},
	{hlog.ErrInvalidEvent, api.CodeInvalidEvent},
	{hlog.ErrInvalidStore, api.CodeInvalidStore},
	{hlog.ErrInvalidPattern, api.CodeInvalidParameter},
	{hlog.ErrSubscriptionNotFound, api.CodeNotFound},
	{hlog.ErrSubscriptionExists, api.CodeConflict},
	{hlog.ErrStoreNotFound, api.CodeNotFound},
	{hlog.ErrEventNotFound, api.CodeNotFound},
	{hlog.ErrInvalidKey, api.CodeInvalidKey},
	{hlog.ErrKeyNotFound, api.CodeNotFound},
	{hlog.ErrKeyExists, api.CodeConflict},
	{hlog.ErrInvalidJoinToken, api.CodeUnauthorized},
	{ErrUnauthorized, api.CodeUnauthorized},
	{ErrForbidden, api.CodeForbidden},
	{ErrNotFound, api.CodeNotFound},
	{ErrTooLarge, api.CodePayloadTooLarge},
	{ErrInvalidMember, api.CodeInvalidMember},
	{hlog.ErrInvalidNode, api.CodeInvalidMember},
	{ErrConflict, api.CodeConflict},
	{ErrBlockedDestination, api.CodeBlockedDestination},
	{ErrRateLimited, api.CodeRateLimited},
	{ErrNotLeader, api.CodeNoLeader},
	{ErrNoLeader, api.CodeNoLeader},
	{ErrTimeout, api.CodeTimeout},
	{ErrNotReady, api.CodeNotReady},
	{ErrUnavailable, api.CodeUnavailable},
	{context.Canceled, api.CodeUnavailable},
}

// classify is the one place an error becomes a code: it returns err's
// code and the sentinel that decided it (nil when none did).
func classify(err error) (api.ErrorCode, error) {
	var re *requestError
	if errors.As(err, &re) {
		return re.code, nil
	}
	var ae *api.Error // another node's answer, passed on: keep its code
	if errors.As(err, &ae) && ae.Code.Known() {
		return ae.Code, nil
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code, e.err
		}
	}
	return api.CodeInternal, nil
}

// message is what an answer says of err: its text, without the leading
// "sentinel: " that the code already says ("conflict: n1 is the leader"
// reads "n1 is the leader" under code conflict).
func message(err, sentinel error) string {
	msg := err.Error()
	for sentinel != nil {
		p := sentinel.Error() + ": "
		if !strings.HasPrefix(msg, p) {
			break
		}
		msg = msg[len(p):]
	}
	return msg
}

// writeError writes {"error":{"code","message"}} with the code's status.
// An internal error's detail goes to the log, not to the client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, sentinel := classify(err)
	status := code.Status()
	msg := message(err, sentinel)
	if code == api.CodeInternal {
		a.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error"
	} else {
		a.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	if code.Retryable() {
		w.Header().Set(api.HeaderRetryAfter, "1")
	}
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		secs := int64((rl.Retry + time.Second - 1) / time.Second)
		w.Header().Set(api.HeaderRetryAfter, strconv.FormatInt(max(secs, 1), 10))
	}
	var ce *hlog.CompactedError
	if errors.As(err, &ce) {
		w.Header().Set(api.HeaderFirstSeq, strconv.FormatUint(ce.FirstSeq, 10))
	}
	writeErrorBody(w, code, msg)
}

// maxMessage bounds an error message: whatever a service wrote, an
// answer never echoes a large input back.
const maxMessage = 400

// clipMessage cuts msg to maxMessage bytes on a UTF-8 boundary.
func clipMessage(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

func writeErrorBody(w http.ResponseWriter, code api.ErrorCode, msg string) {
	msg = clipMessage(msg)
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"error":{"code":`...)
	b = appendString(b, string(code))
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, "}}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code.Status())
	w.Write(b)
}
