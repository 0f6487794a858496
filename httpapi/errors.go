package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	hlog "github.com/herald-io/herald/log"
)

// requestError is a problem with the HTTP request itself, found by the API
// before the Service is called.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(code, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

// errorStatus is the one place errors become a status and a stable code.
func errorStatus(err error) (status int, code string, retry bool) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.status, re.code, false
	case errors.Is(err, hlog.ErrCompacted):
		return http.StatusGone, "compacted", false
	case errors.Is(err, hlog.ErrInvalidSubscription):
		return http.StatusBadRequest, "invalid_subscription", false
	case errors.Is(err, hlog.ErrInvalidEvent):
		return http.StatusBadRequest, "invalid_event", false
	case errors.Is(err, hlog.ErrInvalidStore):
		return http.StatusBadRequest, "invalid_store", false
	case errors.Is(err, hlog.ErrInvalidPattern):
		return http.StatusBadRequest, "invalid_parameter", false
	case errors.Is(err, hlog.ErrSubscriptionNotFound):
		return http.StatusNotFound, "not_found", false
	case errors.Is(err, hlog.ErrSubscriptionExists):
		return http.StatusConflict, "conflict", false
	case errors.Is(err, hlog.ErrStoreNotFound), errors.Is(err, hlog.ErrEventNotFound), errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found", false
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, "bad_request", false
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict", false
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader):
		return http.StatusServiceUnavailable, "no_leader", true
	case errors.Is(err, ErrTimeout):
		return http.StatusServiceUnavailable, "timeout", true
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "unavailable", true
	}
	return http.StatusInternalServerError, "internal", false
}

// writeError writes {"error":{"code","message"}} with the mapped status.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, retry := errorStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		a.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error"
	} else {
		a.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	if retry {
		w.Header().Set("Retry-After", "1")
	}
	var ce *hlog.CompactedError
	if errors.As(err, &ce) {
		w.Header().Set("Herald-First-Seq", strconv.FormatUint(ce.FirstSeq, 10))
	}
	writeErrorBody(w, status, code, msg)
}

func writeErrorBody(w http.ResponseWriter, status int, code, msg string) {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, "}}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
