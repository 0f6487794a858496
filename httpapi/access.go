package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
)

// WithAccessLog logs one line per request to l (at INFO): method, route
// pattern, status, duration, bytes written, the API key's id (never the
// key), the member that forwarded it, and the request id.
func WithAccessLog(l *slog.Logger) Option {
	return func(a *API) { a.access = l }
}

// WithMetricsPublic serves /metrics without a key.
func WithMetricsPublic() Option { return func(a *API) { a.metricsPublic = true } }

// WithPublishObserver is told of every publish request answered: its
// status and how long it took (metrics).
func WithPublishObserver(f func(status int, d time.Duration)) Option {
	return func(a *API) { a.onPublish = f }
}

// reqInfo is what the access log learns while a request is handled.
type reqInfo struct {
	route string // the route's pattern, "" for no route
	keyID string
	node  string // the member that sent it (the cluster port)
	// publishedAt is when the publish handler began (zero: not a publish
	// the handler took), for WithPublishObserver.
	publishedAt time.Time
}

type reqInfoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	i, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return i
}

// newRequestID makes a request id for a request that came without a
// valid one.
func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status and counts the body; Unwrap lets
// http.ResponseController reach the connection (write deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequest gives r its request id (the client's when valid, else a new
// one, returned in X-Request-Id either way) and the access log's record,
// and returns the writer to answer through and a function that logs the
// request once it is answered.
func (a *API) withRequest(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func(aborted bool)) {
	rid := r.Header.Get(api.HeaderRequestID)
	if !api.ValidRequestID(rid) {
		rid = newRequestID()
	}
	w.Header().Set(api.HeaderRequestID, rid)
	info := &reqInfo{}
	r = r.WithContext(context.WithValue(api.WithRequestID(r.Context(), rid), reqInfoKey{}, info))
	if a.access == nil && a.onPublish == nil {
		return w, r, func(bool) {}
	}
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	return sw, r, func(aborted bool) {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if a.onPublish != nil && !info.publishedAt.IsZero() {
			a.onPublish(status, time.Since(info.publishedAt))
		}
		if a.access == nil {
			return
		}
		route := info.route
		if route == "" {
			route = "-"
		}
		attrs := []any{"method", r.Method, "route", route, "status", status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "bytes", sw.bytes, "request_id", rid}
		if info.keyID != "" {
			attrs = append(attrs, "key", info.keyID)
		}
		if info.node != "" {
			attrs = append(attrs, "from_node", info.node)
		}
		if aborted {
			attrs = append(attrs, "aborted", true)
		}
		a.access.Info("request", attrs...)
	}
}
