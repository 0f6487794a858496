package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// fakeNode is an httptest server answering from a handler, counting
// requests.
type fakeNode struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func newFakeNode(t *testing.T, h http.HandlerFunc) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.last, f.body = r, b
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeNode) lastRequest() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.body
}

func writeErr(w http.ResponseWriter, code api.ErrorCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code.Retryable() {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code.Status())
	json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

// deadAddr is a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newClient(t *testing.T, cfg api.Config) *api.Client {
	t.Helper()
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorsAreDecoded(t *testing.T) {
	n := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/stores/gone/events":
			w.Header().Set("Herald-First-Seq", "41")
			writeErr(w, api.CodeCompacted, "removed")
		case "/v1/stores/proxy":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		default:
			writeErr(w, api.CodeNotFound, "no such store")
		}
	})
	c := newClient(t, api.Config{Addresses: []string{n.URL}, MaxRetries: -1})
	ctx := context.Background()

	_, err := c.Store(ctx, "nope", nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != api.CodeNotFound || ae.Message != "no such store" || ae.Addr != n.URL {
		t.Fatalf("404: %#v", err)
	}
	if !api.IsCode(err, api.CodeNotFound) || !errors.Is(err, &api.Error{Code: api.CodeNotFound}) || errors.Is(err, &api.Error{Code: api.CodeConflict}) {
		t.Fatalf("code tests on %v", err)
	}
	if err.Error() != "not_found: no such store" {
		t.Fatalf("message %q", err.Error())
	}
	_, err = c.Events(ctx, "gone", api.ReadOptions{})
	if !errors.As(err, &ae) || ae.Code != api.CodeCompacted || ae.FirstSeq != 41 || ae.StatusCode != 410 {
		t.Fatalf("410: %#v", err)
	}
	_, err = c.Store(ctx, "proxy", nil)
	if !errors.As(err, &ae) || ae.Code != "" || ae.StatusCode != 502 || !strings.Contains(ae.Message, "bad gateway") || api.CodeOf(err) != "" {
		t.Fatalf("non-Herald error: %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "HTTP 502: ") {
		t.Fatalf("message %q", err.Error())
	}
	if api.CodeOf(errors.New("plain")) != "" {
		t.Fatal("CodeOf a plain error")
	}
}

func TestCodesHaveStatuses(t *testing.T) {
	seen := map[api.ErrorCode]bool{}
	for _, c := range api.Codes() {
		if seen[c] || !c.Known() || c.Status() < 400 || c.Status() > 599 {
			t.Errorf("code %q: status %d", c, c.Status())
		}
		seen[c] = true
		if c.Retryable() != (c.Status() == 503) {
			t.Errorf("%s retryable %v", c, c.Retryable())
		}
	}
	if api.ErrorCode("made_up").Known() || api.ErrorCode("made_up").Status() != 500 {
		t.Fatal("unknown code")
	}
}

// TestRetriesOnAnotherNode: idempotent calls move on to the next address
// after a dead node or a 503; a write that may have been stored is not
// sent twice; one that never left (dial refused) is.
func TestRetriesOnAnotherNode(t *testing.T) {
	ok := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet:
			io.WriteString(w, `{"store":"s","first_seq":1,"last_seq":7,"head_hash":"h","events":7}`)
		case strings.HasSuffix(r.URL.Path, "/events"):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"e1","store":"s","seq":8,"type":"t","timestamp":"2026-12-01T10:00:00Z","version":"1","data":{"a": 1},"hash":"h"}`)
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"sub_1","store":"s","url":"http://127.0.0.1:9/","secret":"whsec_x"}`)
		}
	})
	busy := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, api.CodeNoLeader, "electing") })
	ctx := context.Background()

	// A dead first address: every kind of call reaches the second.
	c := newClient(t, api.Config{Addresses: []string{deadAddr(t), ok.addr()}})
	if si, err := c.Store(ctx, "s", nil); err != nil || si.LastSeq != 7 {
		t.Fatalf("read past a dead node: %+v %v", si, err)
	}
	if _, err := c.CreateSubscription(ctx, "s", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr("http://127.0.0.1:9/")}}); err != nil {
		t.Fatalf("a create whose dial was refused is sent to the next node: %v", err)
	}

	// A 503 first: idempotent calls go on, others stop.
	c = newClient(t, api.Config{Addresses: []string{busy.addr(), ok.addr()}})
	before := ok.hits.Load()
	res, err := c.Publish(ctx, "s", api.NewEvent{ID: "e1", Type: "t", Data: json.RawMessage(`{"a": 1}`)})
	if err != nil || !res.Created || res.Events[0].Seq != 8 || string(res.Events[0].Data) != `{"a": 1}` {
		t.Fatalf("publish with an id after a 503: %+v %v", res, err)
	}
	if ok.hits.Load() != before+1 {
		t.Fatal("the retried publish did not reach the second node")
	}
	busyBefore, okBefore := busy.hits.Load(), ok.hits.Load()
	c = newClient(t, api.Config{Addresses: []string{busy.addr(), ok.addr()}})
	_, err = c.Publish(ctx, "s", api.NewEvent{Type: "t", Data: json.RawMessage(`1`)})
	if !api.IsCode(err, api.CodeNoLeader) || busy.hits.Load() != busyBefore+1 || ok.hits.Load() != okBefore {
		t.Fatalf("a publish without id or key was retried (or not tried): %v busy=%d ok=%d", err, busy.hits.Load()-busyBefore, ok.hits.Load()-okBefore)
	}
	// With a key it is idempotent again.
	if _, err := c.Publish(ctx, "s", api.NewEvent{Type: "t", Data: json.RawMessage(`1`), IdempotencyKey: "k1"}); err != nil {
		t.Fatalf("publish with a key after a 503: %v", err)
	}
	if r, _ := ok.lastRequest(); r.Header.Get("Idempotency-Key") != "k1" {
		t.Fatalf("Idempotency-Key not sent: %v", r.Header)
	}

	// No retries: the first answer stands.
	c = newClient(t, api.Config{Addresses: []string{busy.addr(), ok.addr()}, MaxRetries: -1})
	if _, err := c.Store(ctx, "s", nil); !api.IsCode(err, api.CodeNoLeader) {
		t.Fatalf("MaxRetries -1 retried: %v", err)
	}
	// One address, always busy: tried 1 + MaxRetries times, honouring
	// Retry-After (1 s here, capped by the client at 2 s).
	c = newClient(t, api.Config{Addresses: []string{busy.addr()}, MaxRetries: 1})
	busyBefore = busy.hits.Load()
	start := time.Now()
	_, err = c.Store(ctx, "s", nil)
	if !api.IsCode(err, api.CodeNoLeader) || busy.hits.Load() != busyBefore+2 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("single busy node: %v hits=%d after %v", err, busy.hits.Load()-busyBefore, time.Since(start))
	}
}

// TestFollowsTheLeader: after a node says it relayed a request to the
// leader, and the leader is a configured address, later calls go there.
func TestFollowsTheLeader(t *testing.T) {
	leader := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"stores":[]}`)
	})
	follower := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Herald-Forwarded-To", leader.addr())
		io.WriteString(w, `{"stores":[]}`)
	})
	c := newClient(t, api.Config{Addresses: []string{follower.URL, leader.URL}})
	if _, err := c.Stores(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := c.Addresses(); got[0] != leader.URL || follower.hits.Load() != 1 {
		t.Fatalf("addresses after a relayed answer: %v", got)
	}
	if _, err := c.Stores(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if follower.hits.Load() != 1 || leader.hits.Load() != 1 {
		t.Fatalf("second call: follower %d leader %d", follower.hits.Load(), leader.hits.Load())
	}
}

func TestRequestShape(t *testing.T) {
	n := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"events":[],"next":9}`)
	})
	c := newClient(t, api.Config{Addresses: []string{n.addr()}, APIKey: "k3y", UserAgent: "test-agent/1"})
	page, err := c.Events(context.Background(), "shop-1", api.ReadOptions{After: 9, Limit: 5, Types: []string{"store/order/*", "a.b"},
		Wait: 2 * time.Second, Consistency: api.ConsistencyLinearizable})
	if err != nil || page.Next != 9 {
		t.Fatal(page, err)
	}
	r, _ := n.lastRequest()
	q := r.URL.Query()
	if r.URL.Path != "/v1/stores/shop-1/events" || q.Get("after") != "9" || q.Get("limit") != "5" || strings.Join(q["type"], "|") != "store/order/*|a.b" ||
		q.Get("wait") != "2s" || q.Get("consistency") != "linearizable" {
		t.Fatalf("read request %s", r.URL)
	}
	if r.Header.Get("Authorization") != "Bearer k3y" || r.Header.Get("User-Agent") != "test-agent/1" || r.Header.Get("Herald-Forwarded") != "" {
		t.Fatalf("headers %v", r.Header)
	}
	// Path segments are escaped: an id cannot reach another route.
	c.Event(context.Background(), "s", "a/b?c", nil)
	if r, _ = n.lastRequest(); r.URL.EscapedPath() != "/v1/stores/s/events/a%2Fb%3Fc" {
		t.Fatalf("escaped path %q", r.URL.EscapedPath())
	}
	c.Types(context.Background(), "shop-1", &api.QueryOptions{Consistency: api.ConsistencyLocal})
	if r, _ = n.lastRequest(); r.Method != http.MethodGet || r.URL.Path != "/v1/stores/shop-1/types" || r.URL.RawQuery != "consistency=local" {
		t.Fatalf("types request %s %s", r.Method, r.URL)
	}
	// Node-to-node calls carry the forwarded marker.
	c.Forwarding().Stores(context.Background(), nil)
	if r, _ = n.lastRequest(); r.Header.Get("Herald-Forwarded") != "1" {
		t.Fatal("Forwarding did not mark the request")
	}
	// A patch sends only the fields set.
	c.UpdateSubscription(context.Background(), "s", "sub_1", api.SubscriptionPatch{Enabled: api.Ptr(false), MaxInFlight: api.Ptr(0)})
	if r, body := n.lastRequest(); r.Method != http.MethodPatch || string(body) != `{"enabled":false,"max_in_flight":0}` {
		t.Fatalf("patch body %s %s", r.Method, body)
	}
	// Event data goes out byte for byte (encoding/json would compact it
	// and escape <, > and &).
	c.Publish(context.Background(), "s", api.NewEvent{ID: "e\"1", Type: "t", Version: "2", Data: json.RawMessage(`{"b" : [1, 2.50, "<&>"]}`)})
	if _, body := n.lastRequest(); string(body) != `{"id":"e\"1","type":"t","version":"2","data":{"b" : [1, 2.50, "<&>"]}}` {
		t.Fatalf("publish body %s", body)
	}
	c.PublishBatch(context.Background(), "s", []api.NewEvent{{Type: "a", Data: json.RawMessage(` 1 `)}, {Type: "b"}})
	if r, body := n.lastRequest(); string(body) != `{"events":[{"type":"a","data": 1 },{"type":"b","data":null}]}` || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("batch body %s", body)
	}
	// Data that is not JSON is refused before anything is sent.
	hits := n.hits.Load()
	if _, err := c.Publish(context.Background(), "s", api.NewEvent{Type: "t", Data: json.RawMessage(`{nope`)}); err == nil || n.hits.Load() != hits {
		t.Fatalf("invalid data was sent: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, addr := range []string{"ftp://x:1", "http://h:1/path", "http://u:p@h:1", "://"} {
		if _, err := api.NewClient(api.Config{Addresses: []string{addr}}); err == nil {
			t.Errorf("address %q accepted", addr)
		}
	}
	if _, err := api.NewClient(api.Config{CAFile: "/nonexistent/ca.pem"}); err == nil {
		t.Error("missing CA file accepted")
	}
	c := newClient(t, api.Config{})
	if got := c.Addresses(); len(got) != 1 || got[0] != api.DefaultAddress {
		t.Fatalf("default address %v", got)
	}
}

// TestFollowDeliversInOrder: Follow long-polls from the cursor, rides out
// 503s, and stops when the callback says so.
func TestFollowDeliversInOrder(t *testing.T) {
	var calls atomic.Int64
	n := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		k := calls.Add(1)
		if k == 2 {
			writeErr(w, api.CodeNoLeader, "electing")
			return
		}
		after := r.URL.Query().Get("after")
		w.Header().Set("Content-Type", "application/json")
		switch after {
		case "", "0":
			io.WriteString(w, `{"events":[{"id":"a","seq":1},{"id":"b","seq":2}],"next":2}`)
		case "2":
			io.WriteString(w, `{"events":[{"id":"c","seq":3}],"next":3}`)
		default:
			io.WriteString(w, `{"events":[],"next":`+after+`}`)
		}
	})
	c := newClient(t, api.Config{Addresses: []string{n.URL}, MaxRetries: -1})
	var got []string
	stop := errors.New("enough")
	err := c.Follow(context.Background(), "s", api.ReadOptions{Wait: time.Second}, func(e api.Event) error {
		got = append(got, e.ID)
		if e.Seq == 3 {
			return stop
		}
		return nil
	})
	if err != stop || strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("follow: %v %v", got, err)
	}
	// A non-retryable error ends it; a cancelled context ends it.
	bad := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) { writeErr(w, api.CodeInvalidStore, "bad") })
	c = newClient(t, api.Config{Addresses: []string{bad.URL}})
	if err := c.Follow(context.Background(), "s", api.ReadOptions{}, func(api.Event) error { return nil }); !api.IsCode(err, api.CodeInvalidStore) {
		t.Fatalf("follow on a bad store: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newClient(t, api.Config{Addresses: []string{n.URL}}).Follow(ctx, "s", api.ReadOptions{}, func(api.Event) error { return nil }); err != context.Canceled {
		t.Fatalf("follow with a cancelled context: %v", err)
	}
}
