package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/internal/netguard"
	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
)

// Headers Herald adds to every delivery besides the signature headers.
const (
	HeaderAttempt      = "Herald-Attempt"
	HeaderStore        = "Herald-Store"
	HeaderSeq          = "Herald-Seq"
	HeaderSubscription = "Herald-Subscription"
	// HeaderDeliveryControl is the response header a receiver may set to
	// "disable" (disable the subscription) or "abort-message" (stop
	// retrying this event).
	HeaderDeliveryControl = "webhook-delivery"
)

// elided replaces signature values in recorded request headers.
const elided = "(elided)"

// Limits on what an attempt records of a response: whatever a receiver
// sends, its part of an attempt record (response headers, body, error) is
// at most MaxRecordedResponse bytes.
const (
	maxRecordedHeaders     = 32
	maxRecordedHeaderName  = 128
	maxRecordedHeaderLen   = 256
	maxRecordedHeaderTotal = 8 << 10 // names and values of all recorded headers
	maxRecordedError       = 1 << 10
	maxDrain               = 64 << 10 // read past the recorded part to reuse the connection
	// maxResponseHeaderBytes is what the transport reads of a response's
	// header block; a larger one fails the attempt.
	maxResponseHeaderBytes = 64 << 10
)

// MaxRecordedResponse bounds the bytes of an attempt record a receiver
// controls.
const MaxRecordedResponse = maxRecordedHeaderTotal + hlog.MaxResponseBody + maxRecordedError

var bodyPool = sync.Pool{New: func() any { b := make([]byte, hlog.MaxResponseBody); return &b }}

// Response is what a receiver answered, beyond the recorded attempt.
type Response struct {
	// RetryAfter is the delay a 429 or 503 asked for (0 when none).
	RetryAfter time.Duration
	// Control is the webhook-delivery response header, lower-cased.
	Control string
}

// Success reports whether an attempt counts as delivered: a 2xx within
// the timeout. Redirects are not followed, so a 3xx is a failure.
func Success(status int) bool { return status >= 200 && status <= 299 }

// SenderConfig configures a Sender.
type SenderConfig struct {
	// UserAgent is sent on every request (default "Herald").
	UserAgent string
	// DialContext dials endpoints (default net.Dialer); node gives its
	// address guard's (internal/netguard).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxConnsPerHost bounds the connections to one endpoint host (host
	// and port), idle or not, across all subscriptions (default 256, the
	// largest max_in_flight): one publish cannot make Herald open more
	// than that to one victim, whatever number of subscriptions point
	// there. Requests past it wait for a connection within their timeout.
	MaxConnsPerHost int
}

// Sender makes signed delivery attempts. It is safe for concurrent use.
type Sender struct {
	client   *http.Client
	ua       string
	inFlight atomic.Int64
}

// InFlight is how many requests are being made now.
func (s *Sender) InFlight() int64 { return s.inFlight.Load() }

// NewSender returns a Sender with its own connection pool.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "Herald"
	}
	if cfg.MaxConnsPerHost == 0 {
		cfg.MaxConnsPerHost = hlog.MaxMaxInFlight
	}
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &http.Transport{
		Proxy:                  nil, // endpoints are reached directly
		DialContext:            dial,
		MaxIdleConns:           4096,
		MaxIdleConnsPerHost:    cfg.MaxConnsPerHost,
		MaxConnsPerHost:        cfg.MaxConnsPerHost, // however many subscriptions aim at one host
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
	}
	return &Sender{
		ua: cfg.UserAgent,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is an answer, and a failure
			},
		},
	}
}

// Close drops idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Keys parses the secrets that sign a request sent at now; open (nil:
// none) turns a stored secret into its plaintext.
func Keys(sub *hlog.Subscription, now time.Time, open Opener) ([][]byte, error) {
	stored := sub.ActiveSecrets(now.UnixNano())
	keys := make([][]byte, 0, len(stored))
	for _, sec := range stored {
		k, err := secretKey(sub, sec, open)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: subscription %s has no active secret", ErrInvalidSecret, sub.ID)
	}
	return keys, nil
}

// Send POSTs the envelope body of ev to sub's endpoint as attempt number
// attempt and returns the attempt as recorded (Outcome is left for the
// caller, which knows the retry schedule). A canceled ctx is reported as
// ctx.Err() and no attempt: nothing is known about it.
func (s *Sender) Send(ctx context.Context, sub *hlog.Subscription, keys [][]byte, ev *hlog.Event, body []byte, attempt int) (hlog.Attempt, Response, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	start := time.Now()
	a := hlog.Attempt{EventID: ev.ID, Seq: ev.Seq, Attempt: attempt, At: start.UnixNano()}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, sub.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = err.Error()
		a.Duration = int64(time.Since(start))
		return a, Response{}, nil
	}
	h := req.Header
	for k, v := range sub.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.ua)
	SetHeaders(h, keys, ev.ID, start, body)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	h.Set(HeaderStore, ev.Store)
	h.Set(HeaderSeq, strconv.FormatUint(ev.Seq, 10))
	h.Set(HeaderSubscription, sub.ID)
	a.RequestHeaders = recordRequestHeaders(sub, s.ua)

	resp, err := s.client.Do(req)
	if err != nil {
		a.Duration = int64(time.Since(start))
		if parent.Err() != nil {
			return a, Response{}, parent.Err()
		}
		a.Error = cut(describe(err, sub.Timeout), maxRecordedError)
		return a, Response{}, nil
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	a.ResponseHeaders = recordResponseHeaders(resp.Header)
	bp := bodyPool.Get().(*[]byte)
	n, rerr := io.ReadFull(resp.Body, *bp)
	a.ResponseBody = string((*bp)[:n])
	bodyPool.Put(bp)
	if rerr == nil {
		_, rerr = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	a.Duration = int64(time.Since(start))
	if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		if parent.Err() != nil {
			return a, Response{}, parent.Err()
		}
		// The status arrived but the body did not finish in time: the
		// receiver did not answer within the timeout.
		a.Error = cut("reading response: "+describe(rerr, sub.Timeout), maxRecordedError)
	}
	r := Response{Control: strings.ToLower(strings.TrimSpace(resp.Header.Get(HeaderDeliveryControl)))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		r.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a, r, nil
}

// describe words a transport error for the delivery log.
func describe(err error, timeout time.Duration) string {
	var be *netguard.BlockedError
	if errors.As(err, &be) {
		return be.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timeout: no complete answer within %s", timeout)
	}
	var de *netguard.DialError
	if errors.As(err, &de) {
		return de.Error()
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	return err.Error()
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > int64(hlog.MaxRetryDelay/time.Second) {
			return hlog.MaxRetryDelay
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// secretKey opens (open nil: takes as stored) and parses one of sub's
// stored signing secrets.
func secretKey(sub *hlog.Subscription, stored string, open Opener) ([]byte, error) {
	if open != nil {
		plain, err := open(sub.ID, secrets.SecretField, stored)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: signing secret: %w", sub.ID, err)
		}
		stored = plain
	}
	return ParseSecret(stored)
}

// OpenHeaders replaces, in a copy of sub's headers, every sensitive
// header's sealed value with its plaintext (for sending; never stored).
func OpenHeaders(sub *hlog.Subscription, open Opener) error {
	if len(sub.SensitiveHeaders) == 0 {
		return nil
	}
	hs := make(map[string]string, len(sub.Headers))
	for k, v := range sub.Headers {
		if sub.IsSensitive(k) && open != nil {
			plain, err := open(sub.ID, secrets.HeaderField(k), v)
			if err != nil {
				return fmt.Errorf("subscription %s: header %s: %w", sub.ID, k, err)
			}
			v = plain
		}
		hs[k] = v
	}
	sub.Headers = hs
	return nil
}

// recordRequestHeaders keeps what cannot be derived from the attempt and
// its subscription: the static headers (sensitive values elided) and the
// User-Agent. ExpandRequestHeaders adds the rest when the attempt is read.
func recordRequestHeaders(sub *hlog.Subscription, ua string) [][2]string {
	out := make([][2]string, 0, len(sub.Headers)+1)
	for k, v := range sub.Headers {
		if sub.IsSensitive(k) {
			v = elided
		}
		out = append(out, [2]string{strings.ToLower(k), v})
	}
	return append(out, [2]string{"user-agent", ua})
}

// ExpandRequestHeaders completes a recorded attempt's request headers with
// those every delivery carries, derived from the attempt (signature values
// elided), sorted by name.
func ExpandRequestHeaders(a *hlog.Attempt, store, subID string) {
	hs := append(a.RequestHeaders[:len(a.RequestHeaders):len(a.RequestHeaders)],
		[2]string{"content-type", "application/json"},
		[2]string{HeaderID, a.EventID},
		[2]string{HeaderTimestamp, strconv.FormatInt(time.Unix(0, a.At).Unix(), 10)},
		[2]string{HeaderSignature, elided},
		[2]string{strings.ToLower(HeaderBodySignature), elided},
		[2]string{strings.ToLower(HeaderAttempt), strconv.Itoa(a.Attempt)},
		[2]string{strings.ToLower(HeaderStore), store},
		[2]string{strings.ToLower(HeaderSeq), strconv.FormatUint(a.Seq, 10)},
		[2]string{strings.ToLower(HeaderSubscription), subID},
	)
	sort.Slice(hs, func(i, j int) bool { return hs[i][0] < hs[j][0] })
	a.RequestHeaders = hs
}

// recordResponseHeaders keeps, in name order, at most maxRecordedHeaders
// headers, names cut to maxRecordedHeaderName and values to
// maxRecordedHeaderLen bytes, and stops before maxRecordedHeaderTotal
// bytes in all (a receiver once made one attempt record 3 MB of names).
func recordResponseHeaders(h http.Header) [][2]string {
	out := make([][2]string, 0, min(len(h), maxRecordedHeaders))
	for k, vs := range h {
		out = append(out, [2]string{cut(strings.ToLower(k), maxRecordedHeaderName), cut(strings.Join(vs, ", "), maxRecordedHeaderLen)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	total := 0
	for i, kv := range out {
		total += len(kv[0]) + len(kv[1])
		if i == maxRecordedHeaders || total > maxRecordedHeaderTotal {
			return out[:i]
		}
	}
	return out
}

// cut shortens s to at most n bytes.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
