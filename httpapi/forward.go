package httpapi

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// forwarder relays requests that only the leader can serve.
type forwarder struct {
	client *http.Client
	scheme string
}

func newForwarder(tlsCfg *tls.Config) *forwarder {
	scheme := "http://"
	var clientTLS *tls.Config
	if tlsCfg != nil {
		scheme = "https://"
		clientTLS = &tls.Config{RootCAs: tlsCfg.RootCAs, Certificates: tlsCfg.Certificates, MinVersion: tls.VersionTLS12}
	}
	return &forwarder{scheme: scheme, client: &http.Client{
		Timeout: MaxWait + 10*time.Second, // a forwarded long poll lasts up to MaxWait
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     clientTLS,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// fail answers a failed service call: relayed to the leader when this node
// is not it (see maybeForward), else as a JSON error. body is the request
// body to relay (nil for none).
func (a *API) fail(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	if a.maybeForward(w, r, body, err) {
		return
	}
	a.writeError(w, r, err)
}

// maybeForward relays r to the leader when err says this node is not the
// leader, a leader is known, and r was not already forwarded (no loops).
// It reports whether it wrote a response.
func (a *API) maybeForward(w http.ResponseWriter, r *http.Request, body []byte, err error) bool {
	if !errors.Is(err, ErrNotLeader) || r.Header.Get(forwardedHeader) != "" {
		return false
	}
	leader := a.svc.LeaderHTTPAddr()
	if leader == "" {
		return false
	}
	req, rerr := http.NewRequestWithContext(r.Context(), r.Method, a.fwd.scheme+leader+r.URL.RequestURI(), bytes.NewReader(body))
	if rerr != nil {
		return false
	}
	for _, h := range []string{"Content-Type", "Idempotency-Key", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, "1")
	resp, ferr := a.fwd.client.Do(req)
	if ferr != nil {
		a.log.Warn("forward to leader failed", "leader", leader, "error", ferr)
		w.Header().Set("Retry-After", "1")
		writeErrorBody(w, http.StatusServiceUnavailable, "no_leader", fmt.Sprintf("leader %s unreachable: %v", leader, ferr))
		return true
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Location", "Retry-After", "Allow"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Herald-Forwarded-To", leader)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return true
}
