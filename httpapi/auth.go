package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
	"github.com/julienschmidt/httprouter"
)

// Authentication errors.
var (
	// ErrUnauthorized: no key, or an unknown, revoked or expired one (401
	// unauthorized). Every case reads the same to the caller.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the key is valid but lacks the grant, or the request
	// came from a browser origin that is not allowed (403 forbidden).
	ErrForbidden = errors.New("forbidden")
)

// Identity is who a request runs as: an API key's rights, a cluster node,
// or, on a node run with --no-auth, anyone (Anonymous, every right).
type Identity struct {
	KeyID     string
	Name      string
	Admin     bool
	Grants    []api.Grant
	Node      string // a member of the cluster, by its certificate
	Anonymous bool
}

// Allows reports whether the identity may take action on store.
func (id *Identity) Allows(action api.Action, store string) bool {
	if id.Admin || id.Anonymous || id.Node != "" {
		return true
	}
	for _, g := range id.Grants {
		if !slices.Contains(g.Actions, action) {
			continue
		}
		for _, p := range g.Stores {
			if hlog.MatchStore(p, store) {
				return true
			}
		}
	}
	return false
}

// ForwardedFor is what a node puts in Herald-Forwarded-For when it
// passes the request on to the leader: the key id, or "anonymous".
func (id *Identity) ForwardedFor() string {
	if id.KeyID != "" {
		return id.KeyID
	}
	return api.ForwardedAnonymous
}

type identityKey struct{}

// IdentityFrom returns the identity a request runs as (nil outside a
// request the API authenticated).
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// WithIdentity returns ctx carrying id (tests, and node calls made for a
// user).
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// perm is what a route needs.
type perm int

const (
	permNone  perm = iota // anyone: /healthz, /readyz, hello, enroll
	permKey               // any valid key
	permAdmin             // an admin key
	permPublish
	permRead
	permSubs
)

func (p perm) action() api.Action {
	switch p {
	case permPublish:
		return api.ActionPublish
	case permRead:
		return api.ActionRead
	case permSubs:
		return api.ActionSubscriptions
	}
	return ""
}

// Authenticator turns credentials into identities: package node's key
// cache.
type Authenticator interface {
	// Authenticate returns the identity of a bearer key; ErrUnauthorized
	// when it is unknown, revoked or expired.
	Authenticate(key string) (*Identity, error)
	// KeyIdentity returns the identity of key id, which another node has
	// authenticated (Herald-Forwarded-For); ErrUnauthorized when it is
	// revoked or expired here.
	KeyIdentity(id string) (*Identity, error)
}

// authenticate decides who r runs as. The public API takes a bearer key
// (or, without an Authenticator, lets everyone in). The peer API, on the
// cluster port, takes only nodes with a certificate of the cluster CA,
// acting for the identity they forward.
func (a *API) authenticate(r *http.Request) (*Identity, error) {
	if a.peer != nil {
		node, ok := a.peer(r)
		if !ok {
			return nil, fmt.Errorf("%w: the cluster port takes only members of the cluster", ErrUnauthorized)
		}
		if i := infoOf(r.Context()); i != nil {
			i.node = node
		}
		switch f := r.Header.Get(api.HeaderForwardedFor); {
		case f == "":
			return &Identity{Node: node}, nil
		case f == api.ForwardedAnonymous:
			if a.auth != nil {
				return nil, fmt.Errorf("%w: node %s forwarded an anonymous request (it runs with --no-auth, this node does not)", ErrUnauthorized, node)
			}
			return &Identity{Anonymous: true}, nil
		case a.auth == nil:
			return &Identity{Anonymous: true}, nil
		default:
			return a.auth.KeyIdentity(f)
		}
	}
	if a.auth == nil {
		return &Identity{Anonymous: true}, nil
	}
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		if h == "" {
			return nil, fmt.Errorf("%w: send an API key: Authorization: Bearer hk_…", ErrUnauthorized)
		}
		return nil, fmt.Errorf("%w: the Authorization header must be \"Bearer <key>\"", ErrUnauthorized)
	}
	return a.auth.Authenticate(strings.TrimSpace(key))
}

// guard wraps a route's handler with its checks: browser origin,
// credentials, then the grant (on the route's {store} when it has one).
func (a *API) guard(p perm, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if p == permNone {
			h(w, r, ps)
			return
		}
		id, err := a.authenticate(r)
		if err != nil {
			if errors.Is(err, ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
			}
			a.writeError(w, r, err)
			return
		}
		switch {
		case p == permAdmin && !(id.Admin || id.Anonymous || id.Node != ""):
			a.writeError(w, r, fmt.Errorf("%w: this needs an admin key", ErrForbidden))
			return
		case p.action() != "":
			store := ps.ByName("store")
			if !id.Allows(p.action(), store) {
				a.writeError(w, r, fmt.Errorf("%w: the key has no %q grant on store %s", ErrForbidden, p.action(), store))
				return
			}
		}
		if a.used != nil && id.KeyID != "" {
			a.used(id.KeyID)
		}
		if i := infoOf(r.Context()); i != nil {
			i.keyID = id.KeyID
		}
		h(w, r.WithContext(WithIdentity(r.Context(), id)), ps)
	}
}

// checkOrigin refuses requests a browser sends from a page of another
// origin (CSRF), unless the origin is listed (WithCORS); it answers CORS
// preflights of listed origins. It reports whether it wrote a response.
func (a *API) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || a.peer != nil {
		return false
	}
	listed := slices.Contains(a.cors, origin) || slices.Contains(a.cors, "*")
	if !listed && !sameOrigin(origin, r) {
		writeErrorBody(w, api.CodeForbidden, fmt.Sprintf("requests from origin %.100q are not allowed (list it with --cors-origins)", origin))
		return true
	}
	if !listed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", strings.Join(relayedResponseHeaders, ", ")+", "+api.HeaderForwardedTo)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Prefer")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// sameOrigin reports whether origin is the node itself as the request
// addressed it (its Host), which the node's own pages are.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// checkLoop refuses a request that is one of Herald's own webhook
// deliveries (it carries Herald-Subscription): a subscription pointed at
// an API, its own /test included, would otherwise call it once per
// delivery, or recurse.
func (a *API) checkLoop(w http.ResponseWriter, r *http.Request) bool {
	if a.peer != nil || r.Header.Get(api.HeaderSubscription) == "" {
		return false
	}
	writeErrorBody(w, api.CodeForbidden, "this request is a Herald webhook delivery (Herald-Subscription); the API does not take deliveries (loop guard)")
	return true
}

// checkHost refuses a Host header naming neither an IP address, localhost
// nor one of the allowed names: a page whose DNS name was rebound to
// 127.0.0.1 sends its own name. It is on when the API listens on loopback
// only (WithHostCheck).
func (a *API) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if a.hosts == nil {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") || slices.Contains(a.hosts, strings.ToLower(host)) {
		return false
	}
	writeErrorBody(w, api.CodeForbidden, fmt.Sprintf("Host %.100q is not this node's (a loopback node answers only to IP addresses, localhost and --http-advertise)", r.Host))
	return true
}
