package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

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

	auth  Authenticator                              // nil: no authentication (--no-auth, tests)
	peer  func(*http.Request) (node string, ok bool) // set on the cluster port's API
	cors  []string                                   // origins allowed besides the node's own
	hosts []string                                   // nil: no Host check
	used  func(keyID string)                         // told of every authenticated use of a key

	access        *slog.Logger // the access log; nil: none
	metricsPublic bool
	onPublish     func(status int, d time.Duration)
	heartbeat     time.Duration // event streams' idle comment
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
// poll's wait (api.MaxWait) in its Timeout; it is called at the URL
// Leader.RelayTarget gives. The default is a plain HTTP client of the
// API's own.
func WithRelay(client *api.Client) Option {
	return func(a *API) { a.relay = &relay{client: client} }
}

// WithAuth turns authentication on: every route but /healthz, /readyz
// and GET /v1/cluster/hello needs a bearer key that auth knows, with the
// grant the route needs. used, when not nil, is told the key id of every
// authenticated request (for last_used_at).
func WithAuth(auth Authenticator, used func(keyID string)) Option {
	return func(a *API) { a.auth, a.used = auth, used }
}

// WithPeer makes this the API of the cluster port: callers are members,
// known by the certificate member returns (ok false for a caller without
// one: only the enroll and hello routes take those); a member acts for the
// identity in Herald-Forwarded-For, checked against this node's keys.
func WithPeer(member func(*http.Request) (node string, ok bool)) Option {
	return func(a *API) { a.peer = member }
}

// WithCORS lets pages of the listed origins ("*": any) call the API from
// a browser; requests from other origins than the node's own are refused.
func WithCORS(origins []string) Option {
	return func(a *API) { a.cors = origins }
}

// WithHostCheck refuses requests whose Host is not an IP address,
// localhost or one of names: against DNS rebinding, for an API that
// listens on loopback.
func WithHostCheck(names []string) Option {
	return func(a *API) {
		a.hosts = []string{}
		for _, n := range names {
			a.hosts = append(a.hosts, strings.ToLower(n))
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

	a.handle(http.MethodGet, "/healthz", permNone, a.healthz)
	if a.peer == nil {
		a.registerUI() // not an API route: not in Routes or the document
	}
	if svc.Metrics != nil {
		p := permKey
		if a.metricsPublic {
			p = permNone
		}
		h := svc.Metrics
		a.handle(http.MethodGet, "/metrics", p, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { h.ServeHTTP(w, r) })
	}
	a.handle(http.MethodGet, "/v1/openapi.json", permKey, a.openapi)
	a.handle(http.MethodGet, "/v1/self", permKey, a.self)
	if svc.Cluster != nil {
		a.handle(http.MethodGet, "/readyz", permNone, a.readyz)
		a.handle(http.MethodGet, "/v1/cluster", permAdmin, a.cluster)
		a.handle(http.MethodPost, "/v1/cluster/nodes", permAdmin, a.join)
		a.handle(http.MethodDelete, "/v1/cluster/nodes/:id", permAdmin, a.remove)
		a.handle(http.MethodPost, "/v1/cluster/leader/transfer", permAdmin, a.transfer)
	}
	if svc.Join != nil {
		a.handle(http.MethodGet, "/v1/cluster/hello", permNone, a.hello)
		a.handle(http.MethodPost, "/v1/cluster/tokens", permAdmin, a.createToken)
		if a.peer != nil {
			a.handle(http.MethodPost, "/v1/cluster/enroll", permNone, a.enroll)
		}
	}
	if svc.Keys != nil {
		a.handle(http.MethodPost, "/v1/keys", permAdmin, a.createKey)
		a.handle(http.MethodGet, "/v1/keys", permAdmin, a.listKeys)
		a.handle(http.MethodGet, "/v1/keys/:id", permAdmin, a.getKey)
		a.handle(http.MethodDelete, "/v1/keys/:id", permAdmin, a.revokeKey)
		a.handle(http.MethodPost, "/v1/secrets/rotate-key", permAdmin, a.rotateSecretsKey)
	}
	if svc.Backup != nil {
		a.handle(http.MethodGet, "/v1/backup", permAdmin, a.backup)
	}
	if svc.Stores != nil {
		a.handle(http.MethodGet, "/v1/stores", permKey, a.listStores)
		a.handle(http.MethodGet, "/v1/stores/:store", permRead, a.getStore)
		a.handle(http.MethodGet, "/v1/stores/:store/types", permRead, a.getTypes)
		a.handle(http.MethodPut, "/v1/stores/:store", permAdmin, a.putStore)
	}
	if svc.Events != nil {
		a.handle(http.MethodPost, "/v1/stores/:store/events", permPublish, a.publish)
		a.handle(http.MethodGet, "/v1/stores/:store/events", permRead, a.readEvents)
		a.handle(http.MethodGet, "/v1/stores/:store/events/:id", permRead, a.getEvent)
		// The stream shares the route with an event id (getEvent
		// dispatches it); the document lists it as its own path.
		a.routes = append(a.routes, Route{Method: http.MethodGet, Path: "/v1/stores/{store}/events/" + streamID})
	}
	if svc.Subscriptions != nil {
		const subs = "/v1/stores/:store/subscriptions"
		a.handle(http.MethodPost, subs, permSubs, a.createSubscription)
		a.handle(http.MethodGet, subs, permSubs, a.listSubscriptions)
		a.handle(http.MethodGet, subs+"/:id", permSubs, a.getSubscription)
		a.handle(http.MethodPatch, subs+"/:id", permSubs, a.patchSubscription)
		a.handle(http.MethodDelete, subs+"/:id", permSubs, a.deleteSubscription)
		a.handle(http.MethodPost, subs+"/:id/secret/rotate", permSubs, a.rotateSecret)
		a.handle(http.MethodPost, subs+"/:id/enable", permSubs, a.setStatus(hlog.SubActive))
		a.handle(http.MethodPost, subs+"/:id/pause", permSubs, a.setStatus(hlog.SubPaused))
		a.handle(http.MethodPost, subs+"/:id/test", permSubs, a.testSubscription)
		a.handle(http.MethodPost, subs+"/:id/replay", permSubs, a.replay)
		a.handle(http.MethodGet, subs+"/:id/deliveries", permSubs, a.listDeliveries)
		a.handle(http.MethodGet, subs+"/:id/deliveries/:event_id", permSubs, a.eventDeliveries)
		a.handle(http.MethodPost, subs+"/:id/deliveries/:event_id/redeliver", permSubs, a.redeliver)
	}
	return a
}

// handle registers a route. Every route with a {store} checks the name
// before its handler runs, so a malformed store is invalid_store on every
// route alike; then guard checks the caller's rights (p).
func (a *API) handle(method, path string, p perm, h httprouter.Handle) {
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
	route, guarded := path, a.guard(p, h)
	a.router.Handle(method, path, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if i := infoOf(r.Context()); i != nil {
			i.route = route
		}
		guarded(w, r, ps)
	})
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
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, r, logged := a.withRequest(w, r)
	aborted := true
	defer func() { logged(aborted) }()
	a.serve(w, r)
	aborted = false
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	if n := headerBytes(r); n > api.MaxHeaderBytes {
		writeErrorBody(w, api.CodeHeadersTooLarge, fmt.Sprintf("the request line and headers are %d bytes, over the limit of %d", n, api.MaxHeaderBytes))
		return
	}
	if a.checkHost(w, r) || a.checkOrigin(w, r) || a.checkLoop(w, r) {
		return
	}
	a.router.ServeHTTP(w, r)
}

// headerBytes is about what the request line and headers took on the
// wire.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSONBytes(w, http.StatusOK, api.OpenAPI())
}
