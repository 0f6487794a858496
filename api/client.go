package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultAddress is the address of a node started with no flags.
const DefaultAddress = "http://127.0.0.1:8080"

// DefaultUserAgent is the client's User-Agent unless Config sets one.
const DefaultUserAgent = "herald-api-go"

// Config configures a Client. The zero Config talks to DefaultAddress.
type Config struct {
	// Addresses of one or more nodes: host:port (http) or
	// http(s)://host:port. Any node serves every request.
	Addresses []string
	// TLS is used for https:// addresses: RootCAs for a private CA,
	// Certificates for a client certificate. CAFile, when set, adds the
	// PEM certificates in that file to RootCAs.
	TLS    *tls.Config
	CAFile string
	// APIKey is sent as "Authorization: Bearer <key>" on every request.
	APIKey string
	// Timeout bounds each request (default 30s); a long poll adds its
	// wait to it. Backup streams are bounded by the context only.
	Timeout time.Duration
	// UserAgent (default DefaultUserAgent).
	UserAgent string
	// MaxRetries is how many more times an idempotent request that met an
	// unreachable node or a 503 is sent, each time to the next address
	// (default 2; negative: never retry).
	MaxRetries int
	// PublishWithoutData asks nodes to leave the data out of publish
	// answers (Prefer: return=minimal): PublishResult's events then have
	// no Data. For producers that do not need their events back, and the
	// benchmark, which would otherwise spend its CPU decoding them.
	PublishWithoutData bool
	// Forwarded marks every request as sent by another node
	// (Herald-Forwarded): the receiver answers it itself and never relays
	// it. For Herald's own node-to-node calls.
	Forwarded bool
	// HTTPClient replaces the client's own (TLS, CAFile and Timeout are
	// then the caller's business).
	HTTPClient *http.Client

	forwardedFor string // Herald-Forwarded-For (ForwardingFor)
}

// Client calls the Herald API. It is safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	bases []string // scheme://host:port
	// preferred is the index of the address tried first: moved to the
	// leader when a node says it relayed a request there.
	preferred *atomic.Int32
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Addresses) == 0 {
		cfg.Addresses = []string{DefaultAddress}
	}
	bases := make([]string, 0, len(cfg.Addresses))
	for _, a := range cfg.Addresses {
		b, err := baseURL(a)
		if err != nil {
			return nil, err
		}
		bases = append(bases, b)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 2
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tlsCfg, err := clientTLS(cfg.TLS, cfg.CAFile)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:       tlsCfg,
				TLSHandshakeTimeout:   10 * time.Second,
				MaxIdleConns:          512,
				MaxIdleConnsPerHost:   256,
				IdleConnTimeout:       90 * time.Second,
				ExpectContinueTimeout: time.Second,
				ForceAttemptHTTP2:     true,
			},
			// A Herald node never redirects; a 3xx is an answer to show.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{cfg: cfg, http: hc, bases: bases, preferred: new(atomic.Int32)}, nil
}

// baseURL normalises an address to scheme://host:port.
func baseURL(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("api: address %q: use host:port or http(s)://host:port", addr)
	}
	return u.Scheme + "://" + u.Host, nil
}

func clientTLS(base *tls.Config, caFile string) (*tls.Config, error) {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("api: CA file: %w", err)
		}
		pool := cfg.RootCAs
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api: CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Addresses returns the client's node addresses as URLs, the preferred
// one first.
func (c *Client) Addresses() []string {
	p := int(c.preferred.Load())
	out := make([]string, 0, len(c.bases))
	for i := range c.bases {
		out = append(out, c.bases[(p+i)%len(c.bases)])
	}
	return out
}

// On returns a client for the one node at addr (host:port or URL), with
// the same configuration and connection pool. Herald's nodes use it to
// call the leader they know of.
func (c *Client) On(addr string) (*Client, error) {
	b, err := baseURL(addr)
	if err != nil {
		return nil, err
	}
	cc := *c
	cc.bases = []string{b}
	cc.preferred = new(atomic.Int32)
	return &cc, nil
}

// Forwarding returns a client like c whose requests are marked as sent by
// another node (see Config.Forwarded), sharing its connection pool.
func (c *Client) Forwarding() *Client {
	cc := *c
	cc.cfg.Forwarded = true
	return &cc
}

// CloseIdleConnections closes the pool's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// call is one API request.
type call struct {
	method string
	path   string // escaped path
	query  url.Values
	body   []byte // nil: no body
	header http.Header
	// idempotent requests are retried on another node after a 503 or a
	// transport error; others only when they were never sent.
	idempotent bool
	// extra is added to the request timeout (a long poll's wait); noTimeout
	// leaves the request to the context alone (streams).
	extra     time.Duration
	noTimeout bool
}

// do sends the call (retrying as its kind allows) and decodes a 2xx JSON
// answer into out (nil: discard). It returns the status.
func (c *Client) do(ctx context.Context, cl call, out any) (int, error) {
	resp, err := c.send(ctx, cl)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("api: %s %s: decoding the answer: %w", cl.method, cl.path, err)
	}
	io.Copy(io.Discard, resp.Body) // to EOF, so the connection is reused
	return resp.StatusCode, nil
}

// send sends the call and returns a 2xx response, unread; any other answer
// becomes an *Error.
func (c *Client) send(ctx context.Context, cl call) (*http.Response, error) {
	attempts := 1 + max(c.cfg.MaxRetries, 0)
	first := int(c.preferred.Load())
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			wait := 100 * time.Millisecond
			var ae *Error
			if errors.As(lastErr, &ae) && ae.RetryAfter > 0 {
				wait = min(ae.RetryAfter, 2*time.Second)
			}
			if len(c.bases) > 1 && i < len(c.bases) {
				wait = 0 // another node first: no reason to wait
			}
			if wait > 0 && sleep(ctx, wait) != nil {
				return nil, lastErr
			}
		}
		idx := (first + i) % len(c.bases)
		resp, sent, err := c.once(ctx, c.bases[idx], cl)
		if err == nil {
			c.follow(resp)
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil || !c.retryable(cl, sent, err) {
			return nil, err
		}
	}
	return nil, lastErr
}

// retryable decides whether a failed attempt may be sent again.
func (c *Client) retryable(cl call, sent bool, err error) bool {
	if !sent {
		return true // never left this process, or the dial failed
	}
	if !cl.idempotent {
		return false
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	return true // a transport error after sending
}

// follow prefers the leader after a node relayed a request to it, when
// the leader is one of the configured addresses.
func (c *Client) follow(resp *http.Response) {
	to := resp.Header.Get(HeaderForwardedTo)
	if to == "" || len(c.bases) < 2 {
		return
	}
	for i, b := range c.bases {
		if strings.TrimPrefix(strings.TrimPrefix(b, "http://"), "https://") == to {
			c.preferred.Store(int32(i))
			return
		}
	}
}

// once sends one attempt to base. sent is false when the request surely
// never reached a server (so even a non-idempotent request may be retried).
func (c *Client) once(ctx context.Context, base string, cl call) (resp *http.Response, sent bool, err error) {
	resp, err = c.roundTrip(ctx, base, cl)
	if err != nil {
		return nil, !isDialError(err), err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, true, readError(resp, base)
	}
	return resp, true, nil
}

// roundTrip sends one request to base and returns whatever answer came,
// unread; closing its body ends the request's timeout.
func (c *Client) roundTrip(ctx context.Context, base string, cl call) (*http.Response, error) {
	var cancel context.CancelFunc = func() {}
	if !cl.noTimeout {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout+cl.extra)
	}
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("api: %w", err)
	}
	c.setHeaders(req.Header)
	if id := RequestID(ctx); id != "" {
		req.Header.Set(HeaderRequestID, id)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("api: %s %s: %w", cl.method, u, err)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

func (c *Client) setHeaders(h http.Header) {
	h.Set("User-Agent", c.cfg.UserAgent)
	h.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	if c.cfg.Forwarded {
		h.Set(HeaderForwarded, "1")
	}
	if c.cfg.forwardedFor != "" {
		h.Set(HeaderForwardedFor, c.cfg.forwardedFor)
	}
}

// cancelBody releases the request's timeout when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// readError turns a non-2xx answer into an *Error.
func readError(resp *http.Response, base string) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{StatusCode: resp.StatusCode, Addr: base}
	var body ErrorBody
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	if s := resp.Header.Get(HeaderRetryAfter); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	if s := resp.Header.Get(HeaderFirstSeq); s != "" {
		e.FirstSeq, _ = strconv.ParseUint(s, 10, 64)
	}
	return e
}

// Raw sends one request to the client's preferred address as it is
// (pathAndQuery escaped, body nil for none), with the client's
// User-Agent, credentials and Forwarded marker, then header (which wins),
// and returns any response unread: no retries, no error decoding, the
// client's Timeout for the whole exchange. The caller closes the body.
// Herald's relay to the leader uses it; everything else should use the
// typed methods.
func (c *Client) Raw(ctx context.Context, method, pathAndQuery string, body []byte, header http.Header) (*http.Response, error) {
	base := c.bases[int(c.preferred.Load())%len(c.bases)]
	return c.roundTrip(ctx, base, call{method: method, path: pathAndQuery, body: body, header: header})
}

// marshal encodes a request body.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: encoding the request: %w", err)
	}
	return b, nil
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// consistencyQuery returns the query for a read's consistency.
func consistencyQuery(q *QueryOptions) url.Values {
	if q == nil || q.Consistency == "" {
		return nil
	}
	return url.Values{"consistency": {string(q.Consistency)}}
}

// sleep waits d, or until ctx is done: then it returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
