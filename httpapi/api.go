package httpapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// Request limits.
const (
	MaxBodyBytes    = 4 << 20 // a publish body
	MaxBatchEvents  = 1000
	MaxReadLimit    = 1000
	DefaultLimit    = 100
	maxSmallBody    = 64 << 10 // bodies of non-publish requests
	forwardedHeader = "Herald-Forwarded"
)

// API is Herald's HTTP API over a Service.
type API struct {
	svc    Service
	log    *slog.Logger
	router *httprouter.Router
	fwd    *forwarder
}

// Option configures an API.
type Option func(*API)

// WithForwardTLS makes the API reach the leader over HTTPS, trusting
// cfg.RootCAs (nil: plain HTTP).
func WithForwardTLS(cfg *tls.Config) Option {
	return func(a *API) {
		if cfg != nil {
			a.fwd = newForwarder(cfg)
		}
	}
}

// New returns the API handler.
func New(svc Service, logger *slog.Logger, opts ...Option) *API {
	if logger == nil {
		logger = slog.Default()
	}
	a := &API{svc: svc, log: logger.With("subsystem", "http"), fwd: newForwarder(nil)}
	for _, o := range opts {
		o(a)
	}
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeErrorBody(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeErrorBody(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, w.Header().Get("Allow")))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler {
			panic(v) // let net/http abort the connection
		}
		a.log.Error("panic in handler", "method", req.Method, "path", req.URL.Path, "panic", v)
		writeErrorBody(w, http.StatusInternalServerError, "internal", "internal error")
	}

	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/v1/cluster", a.cluster)
	r.POST("/v1/cluster/nodes", a.join)
	r.DELETE("/v1/cluster/nodes/:id", a.remove)
	r.POST("/v1/cluster/leader/transfer", a.transfer)
	r.GET("/v1/backup", a.backup)
	r.GET("/v1/stores", a.listStores)
	r.GET("/v1/stores/:store", a.getStore)
	r.PUT("/v1/stores/:store", a.putStore)
	r.POST("/v1/stores/:store/events", a.publish)
	r.GET("/v1/stores/:store/events", a.readEvents)
	r.GET("/v1/stores/:store/events/:id", a.getEvent)

	const subs = "/v1/stores/:store/subscriptions"
	r.POST(subs, a.createSubscription)
	r.GET(subs, a.listSubscriptions)
	r.GET(subs+"/:id", a.getSubscription)
	r.PATCH(subs+"/:id", a.patchSubscription)
	r.DELETE(subs+"/:id", a.deleteSubscription)
	r.POST(subs+"/:id/secret/rotate", a.rotateSecret)
	r.POST(subs+"/:id/enable", a.setStatus(hlog.SubActive))
	r.POST(subs+"/:id/pause", a.setStatus(hlog.SubPaused))
	r.POST(subs+"/:id/test", a.testSubscription)
	r.POST(subs+"/:id/replay", a.replay)
	r.GET(subs+"/:id/deliveries", a.listDeliveries)
	r.GET(subs+"/:id/deliveries/:event_id", a.eventDeliveries)
	r.POST(subs+"/:id/deliveries/:event_id/redeliver", a.redeliver)
	a.router = r
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeJSONBytes writes a ready-made JSON body.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeJSON encodes v (never an Event: see log.Event.AppendJSON).
func (a *API) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// checkJSONContentType accepts no Content-Type, application/json (and
// any +json type), and application/x-www-form-urlencoded, which is what
// `curl -d` sends unless told otherwise; the body is parsed as JSON either
// way. Anything else (text/plain, multipart/form-data, ...) is refused.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt := strings.TrimSpace(strings.ToLower(strings.SplitN(ct, ";", 2)[0]))
	if mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/x-www-form-urlencoded" {
		return nil
	}
	return &requestError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: fmt.Sprintf("Content-Type %q: send application/json", ct)}
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := a.svc.Ready(r.Context()); err != nil {
		writeErrorBody(w, http.StatusServiceUnavailable, "not_ready", err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ready"}`+"\n"))
}

func (a *API) cluster(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c, err := consistency(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	info, err := a.svc.Cluster(r.Context(), c)
	if err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, info)
}

func (a *API) join(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, maxSmallBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req JoinRequest
	if err := decodeStrict(body, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		a.writeError(w, r, badRequest("bad_request", "id, raft_addr and http_addr are required"))
		return
	}
	if err := a.svc.Join(r.Context(), req); err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, map[string]any{"id": req.ID, "raft_addr": req.RaftAddr, "http_addr": req.HTTPAddr, "voter": req.Voter == nil || *req.Voter})
}

func (a *API) remove(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	if err := a.svc.Remove(r.Context(), id); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, map[string]string{"removed": id})
}

func (a *API) transfer(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	body, err := readBody(w, r, maxSmallBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req struct {
		To string `json:"to"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	leader, err := a.svc.TransferLeader(r.Context(), req.To)
	if err != nil {
		a.fail(w, r, body, err)
		return
	}
	a.writeJSON(w, r, http.StatusOK, map[string]string{"leader": leader})
}

// backup streams this node's event log. Headers go out before the copy, so
// a failure midway can only cut the stream short: the handler then aborts
// the connection so the client sees an error rather than a clean end, and
// `herald backup` checks the file it received before keeping it.
func (a *API) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="herald-backup.db"`)
	n, err := a.svc.Backup(r.Context(), w)
	if err != nil {
		if n == 0 {
			w.Header().Del("Content-Disposition")
			a.writeError(w, r, err)
			return
		}
		a.log.Error("backup stream failed midway", "bytes", n, "error", err)
		panic(http.ErrAbortHandler) // abort the connection: the client sees a truncated body, not a valid file
	}
}
