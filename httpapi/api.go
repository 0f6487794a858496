package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// API is Herald's HTTP API over its services.
type API struct {
	svc    Services
	log    *slog.Logger
	router *httprouter.Router
	routes []Route
	relay  *relay
}

// Route is one registered method and path, in OpenAPI's form
// (/v1/stores/{store}).
type Route struct {
	Method string
	Path   string
}

// Option configures an API.
type Option func(*API)

// WithRelay makes the API relay to the leader through client, which must
// mark its requests forwarded (api.Client.Forwarding) and allow a long
// poll's wait (api.MaxWait) in its Timeout; https says whether the
// cluster's HTTP addresses are served over TLS. The default is a plain
// HTTP client of the API's own.
func WithRelay(client *api.Client, https bool) Option {
	return func(a *API) {
		a.relay = &relay{client: client, scheme: "http://"}
		if https {
			a.relay.scheme = "https://"
		}
	}
}

// New returns the API handler over svc.
func New(svc Services, logger *slog.Logger, opts ...Option) *API {
	if logger == nil {
		logger = slog.Default()
	}
	a := &API{svc: svc, log: logger.With("subsystem", "http")}
	for _, o := range opts {
		o(a)
	}
	if a.relay == nil {
		a.relay = plainRelay()
	}
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false // no CORS or OPTIONS: a JSON 405 like any other method
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeErrorBody(w, api.CodeNotFound, fmt.Sprintf("no route for %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeErrorBody(w, api.CodeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, w.Header().Get("Allow")))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler {
			panic(v) // let net/http abort the connection
		}
		a.log.Error("panic in handler", "method", req.Method, "path", req.URL.Path, "panic", v)
		writeErrorBody(w, api.CodeInternal, "internal error")
	}
	a.router = r

	a.handle(http.MethodGet, "/healthz", a.healthz)
	a.handle(http.MethodGet, "/v1/openapi.json", a.openapi)
	if svc.Cluster != nil {
		a.handle(http.MethodGet, "/readyz", a.readyz)
		a.handle(http.MethodGet, "/v1/cluster", a.cluster)
		a.handle(http.MethodPost, "/v1/cluster/nodes", a.join)
		a.handle(http.MethodDelete, "/v1/cluster/nodes/:id", a.remove)
		a.handle(http.MethodPost, "/v1/cluster/leader/transfer", a.transfer)
	}
	if svc.Backup != nil {
		a.handle(http.MethodGet, "/v1/backup", a.backup)
	}
	if svc.Stores != nil {
		a.handle(http.MethodGet, "/v1/stores", a.listStores)
		a.handle(http.MethodGet, "/v1/stores/:store", a.getStore)
		a.handle(http.MethodPut, "/v1/stores/:store", a.putStore)
	}
	if svc.Events != nil {
		a.handle(http.MethodPost, "/v1/stores/:store/events", a.publish)
		a.handle(http.MethodGet, "/v1/stores/:store/events", a.readEvents)
		a.handle(http.MethodGet, "/v1/stores/:store/events/:id", a.getEvent)
	}
	if svc.Subscriptions != nil {
		const subs = "/v1/stores/:store/subscriptions"
		a.handle(http.MethodPost, subs, a.createSubscription)
		a.handle(http.MethodGet, subs, a.listSubscriptions)
		a.handle(http.MethodGet, subs+"/:id", a.getSubscription)
		a.handle(http.MethodPatch, subs+"/:id", a.patchSubscription)
		a.handle(http.MethodDelete, subs+"/:id", a.deleteSubscription)
		a.handle(http.MethodPost, subs+"/:id/secret/rotate", a.rotateSecret)
		a.handle(http.MethodPost, subs+"/:id/enable", a.setStatus(hlog.SubActive))
		a.handle(http.MethodPost, subs+"/:id/pause", a.setStatus(hlog.SubPaused))
		a.handle(http.MethodPost, subs+"/:id/test", a.testSubscription)
		a.handle(http.MethodPost, subs+"/:id/replay", a.replay)
		a.handle(http.MethodGet, subs+"/:id/deliveries", a.listDeliveries)
		a.handle(http.MethodGet, subs+"/:id/deliveries/:event_id", a.eventDeliveries)
		a.handle(http.MethodPost, subs+"/:id/deliveries/:event_id/redeliver", a.redeliver)
	}
	return a
}

// handle registers a route. Every route with a {store} checks the name
// before its handler runs, so a malformed store is invalid_store on every
// route alike.
func (a *API) handle(method, path string, h httprouter.Handle) {
	if strings.Contains(path, "/:store") {
		inner := h
		h = func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
			if err := hlog.ValidateStoreName(ps.ByName("store")); err != nil {
				a.writeError(w, r, err)
				return
			}
			inner(w, r, ps)
		}
	}
	a.router.Handle(method, path, h)
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	a.routes = append(a.routes, Route{Method: method, Path: strings.Join(segs, "/")})
}

// Routes lists the registered routes in OpenAPI path form.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

func (a *API) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSONBytes(w, http.StatusOK, api.OpenAPI())
}
