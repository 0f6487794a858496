package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/herald-io/herald/api"
)

// relay passes requests that only the leader can serve on to it, through
// an api.Client whose requests are marked forwarded (one connection pool
// for every leader it meets).
type relay struct {
	client *api.Client
}

// plainRelay reaches leaders over plain HTTP with a client of its own: for
// an API built without WithRelay (tests).
func plainRelay() *relay {
	c, err := api.NewClient(api.Config{
		// No Addresses: every call is made through On(leader).
		Timeout:    api.MaxWait + 10*time.Second, // a relayed long poll lasts up to MaxWait
		UserAgent:  "herald-relay",
		Forwarded:  true,
		MaxRetries: -1,
	})
	if err != nil {
		panic(fmt.Sprintf("httpapi: relay client: %v", err)) // fixed, valid configuration
	}
	return &relay{client: c}
}

// relayedRequestHeaders are the client's headers a relayed request keeps.
// Never the caller's credentials: the node authenticates as itself and
// names the identity it acts for (Herald-Forwarded-For).
var relayedRequestHeaders = []string{"Content-Type", api.HeaderIdempotencyKey, "Accept", api.HeaderPrefer}

// relayedResponseHeaders are the leader's headers the client gets back.
var relayedResponseHeaders = []string{"Content-Type", "Location", api.HeaderRetryAfter, "Allow", api.HeaderFirstSeq, api.HeaderPreferenceApplied}

// fail answers a failed service call: relayed to the leader when this node
// is not it (see maybeRelay), else as a JSON error. body is the request
// body to relay (nil for none).
func (a *API) fail(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	if a.maybeRelay(w, r, body, err) {
		return
	}
	a.writeError(w, r, err)
}

// maybeRelay relays r to the leader when err says this node is not the
// leader, a leader is known, and r was not already relayed (no loops). It
// reports whether it wrote a response.
func (a *API) maybeRelay(w http.ResponseWriter, r *http.Request, body []byte, err error) bool {
	if !errors.Is(err, ErrNotLeader) || r.Header.Get(api.HeaderForwarded) != "" || a.svc.Leader == nil {
		return false
	}
	target, leader := a.svc.Leader.RelayTarget()
	if target == "" {
		return false
	}
	client := a.relay.client
	if id := IdentityFrom(r.Context()); id != nil {
		client = client.ForwardingFor(id.ForwardedFor()) // as node.publishTo does
	}
	c, cerr := client.On(target)
	if cerr != nil {
		return false
	}
	h := http.Header{}
	for _, k := range relayedRequestHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	resp, ferr := c.Raw(r.Context(), r.Method, r.URL.RequestURI(), body, h)
	if ferr != nil {
		a.log.Warn("relay to leader failed", "leader", leader, "error", ferr)
		w.Header().Set(api.HeaderRetryAfter, "1")
		writeErrorBody(w, api.CodeNoLeader, fmt.Sprintf("leader %s unreachable: %v", leader, ferr))
		return true
	}
	defer resp.Body.Close()
	for _, k := range relayedResponseHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set(api.HeaderForwardedTo, leader)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return true
}
