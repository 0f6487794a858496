package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newServer(t *testing.T, svc Service) *httptest.Server {
	t.Helper()
	return newServerWith(t, svc)
}

func newServerWith(t *testing.T, svc Service, opts ...Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(All(svc), quiet(), opts...))
	t.Cleanup(srv.Close)
	return srv
}

// testClient makes the tests' requests; openapi_test.go wraps its
// transport so that every request and response is validated against the
// OpenAPI document.
var testClient = &http.Client{Transport: http.DefaultTransport}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, srv.URL+path, strings.NewReader(body)) // testContext: see openapi_test.go
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error body: %s", b)
	}
	return e.Error.Code
}

// TestErrors drives every route's error paths. Each case must fail with
// the given status and code and change nothing.
func TestErrors(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	big := `{"type":"t","data":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	var many bytes.Buffer
	many.WriteString(`{"events":[`)
	for i := 0; i <= api.MaxBatchEvents; i++ {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString(`{"type":"t","data":1}`)
	}
	many.WriteString(`]}`)
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"malformed json", "POST", "/v1/stores/s/events", `{"type":`, nil, 400, "invalid_json"},
		{"not an object", "POST", "/v1/stores/s/events", `[1,2]`, nil, 400, "invalid_event"},
		{"empty body", "POST", "/v1/stores/s/events", ``, nil, 400, "invalid_json"},
		{"trailing garbage", "POST", "/v1/stores/s/events", `{"type":"t","data":1} x`, nil, 400, "invalid_json"},
		{"unknown field", "POST", "/v1/stores/s/events", `{"type":"t","data":1,"colour":"red"}`, nil, 400, "invalid_event"},
		{"wrong field type", "POST", "/v1/stores/s/events", `{"type":7,"data":1}`, nil, 400, "invalid_event"},
		{"missing type", "POST", "/v1/stores/s/events", `{"data":1}`, nil, 400, "invalid_event"},
		{"missing data", "POST", "/v1/stores/s/events", `{"type":"t"}`, nil, 400, "invalid_event"},
		{"bad type chars", "POST", "/v1/stores/s/events", `{"type":"a b","data":1}`, nil, 400, "invalid_event"},
		{"type too long", "POST", "/v1/stores/s/events", `{"type":"` + strings.Repeat("a", 129) + `","data":1}`, nil, 400, "invalid_event"},
		{"bad id", "POST", "/v1/stores/s/events", `{"id":"a b","type":"t","data":1}`, nil, 400, "invalid_event"},
		{"bad version", "POST", "/v1/stores/s/events", `{"version":"v 1","type":"t","data":1}`, nil, 400, "invalid_event"},
		{"batch and single", "POST", "/v1/stores/s/events", `{"type":"t","data":1,"events":[{"type":"t","data":1}]}`, nil, 400, "invalid_event"},
		{"empty batch", "POST", "/v1/stores/s/events", `{"events":[]}`, nil, 400, "invalid_event"},
		{"bad event in batch", "POST", "/v1/stores/s/events", `{"events":[{"type":"t","data":1},{"type":"t"}]}`, nil, 400, "invalid_event"},
		{"idempotency key on batch", "POST", "/v1/stores/s/events", `{"events":[{"type":"t","data":1}]}`, []string{"Idempotency-Key", "k"}, 400, "invalid_event"},
		{"bad idempotency key", "POST", "/v1/stores/s/events", `{"type":"t","data":1}`, []string{"Idempotency-Key", "has space"}, 400, "invalid_event"},
		{"too many events", "POST", "/v1/stores/s/events", many.String(), nil, 413, "payload_too_large"},
		{"oversize body", "POST", "/v1/stores/s/events", big, nil, 413, "payload_too_large"},
		{"wrong content type", "POST", "/v1/stores/s/events", `{"type":"t","data":1}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"uppercase store", "POST", "/v1/stores/Shop/events", `{"type":"t","data":1}`, nil, 400, "invalid_store"},
		{"leading dot store", "POST", "/v1/stores/.s/events", `{"type":"t","data":1}`, nil, 400, "invalid_store"},
		{"long store", "POST", "/v1/stores/" + strings.Repeat("a", 65) + "/events", `{"type":"t","data":1}`, nil, 400, "invalid_store"},
		{"bad store on read", "GET", "/v1/stores/A/events", ``, nil, 400, "invalid_store"},
		{"bad store on get", "GET", "/v1/stores/A", ``, nil, 400, "invalid_store"},
		{"bad store on event", "GET", "/v1/stores/A/events/x", ``, nil, 400, "invalid_store"},
		{"after negative", "GET", "/v1/stores/s/events?after=-1", ``, nil, 400, "invalid_parameter"},
		{"after past any seq", "GET", "/v1/stores/s/events?after=18446744073709551615", ``, nil, 400, "invalid_parameter"},
		{"header value with \\x01", "POST", "/v1/stores/s/subscriptions", `{"url":"http://127.0.0.1:9/x","headers":{"X-A":"a\u0001b"}}`, nil, 400, "invalid_subscription"},
		{"limit zero", "GET", "/v1/stores/s/events?limit=0", ``, nil, 400, "invalid_parameter"},
		{"limit too big", "GET", "/v1/stores/s/events?limit=5000", ``, nil, 400, "invalid_parameter"},
		{"limit not a number", "GET", "/v1/stores/s/events?limit=abc", ``, nil, 400, "invalid_parameter"},
		{"wait too long", "GET", "/v1/stores/s/events?wait=31s", ``, nil, 400, "invalid_parameter"},
		{"wait bogus", "GET", "/v1/stores/s/events?wait=soon", ``, nil, 400, "invalid_parameter"},
		{"bad pattern", "GET", "/v1/stores/s/events?type=a**b", ``, nil, 400, "invalid_parameter"},
		{"bad consistency", "GET", "/v1/stores/s/events?consistency=weird", ``, nil, 400, "invalid_parameter"},
		{"bad consistency on stores", "GET", "/v1/stores?consistency=weird", ``, nil, 400, "invalid_parameter"},
		{"missing store", "GET", "/v1/stores/nope", ``, nil, 404, "not_found"},
		{"missing event", "GET", "/v1/stores/nope/events/evt_1", ``, nil, 404, "not_found"},
		{"unknown route", "GET", "/v2/anything", ``, nil, 404, "not_found"},
		{"unknown subroute", "GET", "/v1/stores/s/events/x/y", ``, nil, 404, "not_found"},
		{"wrong method on events", "DELETE", "/v1/stores/s/events", ``, nil, 405, "method_not_allowed"},
		{"wrong method on cluster", "PUT", "/v1/cluster", ``, nil, 405, "method_not_allowed"},
		{"join malformed", "POST", "/v1/cluster/nodes", `{`, nil, 400, "invalid_json"},
		{"join missing fields", "POST", "/v1/cluster/nodes", `{"id":"n2"}`, nil, 400, "invalid_member"},
		{"join unknown field", "POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"a:1","http_addr":"a:2","zone":"x"}`, nil, 400, "invalid_member"},
		{"remove unknown member", "DELETE", "/v1/cluster/nodes/nope", ``, nil, 404, "not_found"},
		{"transfer malformed", "POST", "/v1/cluster/leader/transfer", `{"to":`, nil, 400, "invalid_json"},
		{"transfer unknown field", "POST", "/v1/cluster/leader/transfer", `{"target":"n2"}`, nil, 400, "invalid_member"},
		{"wrong method on transfer", "GET", "/v1/cluster/leader/transfer", ``, nil, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := errCode(t, r.body); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if stores, _ := f.db.Stores(); len(stores) != 0 {
		t.Fatalf("bad requests created stores: %+v", stores)
	}
}

func TestServiceErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		retry  bool
	}{
		{fmt.Errorf("x: %w", ErrNoLeader), 503, "no_leader", true},
		{fmt.Errorf("x: %w", ErrNotLeader), 503, "no_leader", true},
		{fmt.Errorf("x: %w", ErrUnavailable), 503, "unavailable", true},
		{fmt.Errorf("x: %w", ErrTimeout), 503, "timeout", true},
		{fmt.Errorf("x: %w", ErrNotReady), 503, "not_ready", true},
		{fmt.Errorf("x: %w", ErrConflict), 409, "conflict", false},
		{fmt.Errorf("x: %w", ErrInvalidMember), 400, "invalid_member", false},
		{fmt.Errorf("x: %w", ErrNotFound), 404, "not_found", false},
		{fmt.Errorf("x: %w", hlog.ErrReservedStore), 400, "reserved_store", false},
		{fmt.Errorf("x: %w", hlog.ErrInvalidRetention), 400, "invalid_retention", false},
		{&hlog.CompactedError{Store: "s", FirstSeq: 3}, 410, "compacted", false},
		// Another node's answer keeps its code; an unknown code is internal.
		{fmt.Errorf("leader: %w", &api.Error{StatusCode: 400, Code: api.CodeInvalidEvent, Message: "m"}), 400, "invalid_event", false},
		{fmt.Errorf("leader: %w", &api.Error{StatusCode: 418, Code: "teapot", Message: "m"}), 500, "internal", false},
		{errors.New("disk on fire"), 500, "internal", false},
	}
	for _, tc := range cases {
		c, _ := classify(tc.err)
		if c.Status() != tc.status || string(c) != tc.code || c.Retryable() != tc.retry {
			t.Errorf("%v: got %d %s %v", tc.err, c.Status(), c, c.Retryable())
		}
	}
	// A 500 does not leak the internal message.
	rec := httptest.NewRecorder()
	a := New(All(newFake(t)), quiet())
	a.writeError(rec, httptest.NewRequest("GET", "/", nil), errors.New("secret path /var/x"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("500 body: %s", rec.Body)
	}
}

func TestPublishAndReadRoutes(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	raw := `{"b" : [1, 2.50, "<&>"],  "a":	null}`
	r := do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"store/order/created","data":`+raw+`}`)
	if r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	if !bytes.Contains(r.body, []byte(`"data":`+raw+`,`)) {
		t.Fatalf("data not byte for byte: %s", r.body)
	}
	var ev struct {
		ID      string `json:"id"`
		Seq     uint64 `json:"seq"`
		Version string `json:"version"`
	}
	json.Unmarshal(r.body, &ev)
	if ev.Seq != 1 || ev.Version != "1" || r.header.Get("Location") != "/v1/stores/shop/events/"+ev.ID {
		t.Fatalf("event %+v location %q", ev, r.header.Get("Location"))
	}
	// Batch: contiguous seqs in order.
	r = do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"type":"a","data":1},{"type":"b","data":2,"version":"2"},{"id":"c-1","type":"store/stock/moved","data":3}]}`)
	var batch struct {
		Events []struct {
			ID      string `json:"id"`
			Seq     uint64 `json:"seq"`
			Type    string `json:"type"`
			Version string `json:"version"`
		} `json:"events"`
	}
	if r.status != 201 || json.Unmarshal(r.body, &batch) != nil || len(batch.Events) != 3 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	for i, e := range batch.Events {
		if e.Seq != uint64(i+2) {
			t.Fatalf("batch event %d seq %d", i, e.Seq)
		}
	}
	if batch.Events[1].Version != "2" || batch.Events[2].ID != "c-1" {
		t.Fatalf("batch = %+v", batch)
	}
	// Idempotent: same id again → 200, original, nothing stored.
	r = do(t, srv, "POST", "/v1/stores/shop/events", `{"id":"c-1","type":"other","data":9}`)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"type":"store/stock/moved"`)) {
		t.Fatalf("duplicate id: %d %s", r.status, r.body)
	}
	r1 := do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"k","data":1}`, "Idempotency-Key", "key-1")
	r2 := do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"k","data":1}`, "Idempotency-Key", "key-1")
	if r1.status != 201 || r2.status != 200 || !bytes.Equal(r1.body, r2.body) {
		t.Fatalf("idempotency key: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
	}
	// Read pages, filters.
	var page struct {
		Events []struct {
			Seq  uint64 `json:"seq"`
			Type string `json:"type"`
		} `json:"events"`
		Next uint64 `json:"next"`
	}
	r = do(t, srv, "GET", "/v1/stores/shop/events?after=1&limit=2", "")
	if json.Unmarshal(r.body, &page); r.status != 200 || len(page.Events) != 2 || page.Events[0].Seq != 2 || page.Next != 3 {
		t.Fatalf("page: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/events?type=store/*/created&type=store.stock.**", "")
	if json.Unmarshal(r.body, &page); len(page.Events) != 2 || page.Events[0].Seq != 1 || page.Events[1].Seq != 4 {
		t.Fatalf("filtered: %s", r.body)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/events?type=a,b&consistency=local", "")
	if json.Unmarshal(r.body, &page); len(page.Events) != 2 {
		t.Fatalf("comma patterns: %s", r.body)
	}
	r = do(t, srv, "GET", "/v1/stores/empty/events?after=5", "")
	if r.status != 200 || string(r.body) != "{\"events\":[],\"next\":5}\n" {
		t.Fatalf("empty store: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/events/c-1?consistency=linearizable", "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"seq":4`)) {
		t.Fatalf("get event: %d %s", r.status, r.body)
	}
	var si struct {
		Store     string `json:"store"`
		LastSeq   uint64 `json:"last_seq"`
		HeadHash  string `json:"head_hash"`
		Events    uint64 `json:"events"`
		CreatedAt string `json:"created_at"`
	}
	r = do(t, srv, "GET", "/v1/stores/shop", "")
	if json.Unmarshal(r.body, &si); r.status != 200 || si.LastSeq != 5 || len(si.HeadHash) != 64 || si.Events != 5 || si.CreatedAt == "" {
		t.Fatalf("store: %d %s", r.status, r.body)
	}
	var list struct {
		Stores []struct {
			Store string `json:"store"`
		} `json:"stores"`
	}
	r = do(t, srv, "GET", "/v1/stores", "")
	if json.Unmarshal(r.body, &list); r.status != 200 || len(list.Stores) != 1 || list.Stores[0].Store != "shop" {
		t.Fatalf("stores: %s", r.body)
	}
}

func TestEmptyStoreListIsArray(t *testing.T) {
	srv := newServer(t, newFake(t))
	r := do(t, srv, "GET", "/v1/stores", "")
	if r.status != 200 || string(r.body) != "{\"stores\":[]}\n" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestLongPollWakesOnPublish(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	done := make(chan resp, 1)
	start := time.Now()
	go func() { done <- do(t, srv, "GET", "/v1/stores/lp/events?after=0&wait=20s", "") }()
	// Publish until the poller has returned; it must return with the event
	// well before its 20 s wait.
	var r resp
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case r = <-done:
			break loop
		case <-tick.C:
			if si, err := f.db.Store("lp"); err != nil || si.LastSeq == 0 {
				do(t, srv, "POST", "/v1/stores/lp/events", `{"type":"t","data":1}`)
			}
		case <-deadline:
			t.Fatal("long poll did not return")
		}
	}
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"seq":1`)) || time.Since(start) > 15*time.Second {
		t.Fatalf("long poll: %d %s", r.status, r.body)
	}
	// With nothing new, a short wait returns empty at its deadline.
	r = do(t, srv, "GET", "/v1/stores/lp/events?after=1&wait=1", "")
	if r.status != 200 || string(r.body) != "{\"events\":[],\"next\":1}\n" {
		t.Fatalf("timed-out poll: %s", r.body)
	}
}

func TestHealthReadyClusterJoin(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	if r := do(t, srv, "GET", "/healthz", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"ok"`)) {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	f.readyErr = fmt.Errorf("%w: catching up", ErrUnavailable)
	if r := do(t, srv, "GET", "/readyz", ""); r.status != 503 || errCode(t, r.body) != "not_ready" {
		t.Fatalf("readyz not ready: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/cluster", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"suffrage":"voter"`)) {
		t.Fatalf("cluster %d %s", r.status, r.body)
	}
	r := do(t, srv, "POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"127.0.0.1:2","http_addr":"127.0.0.1:3"}`)
	if r.status != 200 || len(f.joined) != 1 || f.joined[0].ID != "n2" {
		t.Fatalf("join %d %s %+v", r.status, r.body, f.joined)
	}
	if r = do(t, srv, "DELETE", "/v1/cluster/nodes/n2", ""); r.status != 200 || len(f.joined) != 0 || !bytes.Contains(r.body, []byte(`"removed":"n2"`)) {
		t.Fatalf("remove %d %s", r.status, r.body)
	}
	if r = do(t, srv, "POST", "/v1/cluster/leader/transfer", `{"to":"n7"}`); r.status != 200 || !bytes.Contains(r.body, []byte(`"leader":"n7"`)) {
		t.Fatalf("transfer %d %s", r.status, r.body)
	}
	if r = do(t, srv, "POST", "/v1/cluster/leader/transfer", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"leader":"fake-2"`)) {
		t.Fatalf("transfer without body %d %s", r.status, r.body)
	}
}

func TestForwardingToLeader(t *testing.T) {
	leaderSvc := newFake(t)
	leader := newServer(t, leaderSvc)
	followerSvc := newFake(t)
	followerSvc.notLeader = true
	followerSvc.leader = strings.TrimPrefix(leader.URL, "http://")
	follower := newServer(t, followerSvc)

	r := do(t, follower, "POST", "/v1/stores/fw/events", `{"type":"t","data":{"x": 1}}`, "Idempotency-Key", "fk")
	if r.status != 201 || r.header.Get("Herald-Forwarded-To") != followerSvc.leader || r.header.Get("Location") == "" {
		t.Fatalf("forwarded publish: %d %v %s", r.status, r.header, r.body)
	}
	if si, err := leaderSvc.db.Store("fw"); err != nil || si.LastSeq != 1 {
		t.Fatalf("write did not land on the leader: %+v %v", si, err)
	}
	if _, err := followerSvc.db.Store("fw"); err == nil {
		t.Fatal("write landed on the follower")
	}
	// The idempotency key travelled with it.
	r = do(t, follower, "POST", "/v1/stores/fw/events", `{"type":"t","data":2}`, "Idempotency-Key", "fk")
	if r.status != 200 {
		t.Fatalf("forwarded retry: %d %s", r.status, r.body)
	}
	// Reads at leader consistency are forwarded; local ones are not.
	if r = do(t, follower, "GET", "/v1/stores/fw/events", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"seq":1`)) {
		t.Fatalf("forwarded read: %d %s", r.status, r.body)
	}
	if r = do(t, follower, "GET", "/v1/stores/fw?consistency=local", ""); r.status != 404 {
		t.Fatalf("local read was forwarded: %d %s", r.status, r.body)
	}
	if r = do(t, follower, "POST", "/v1/cluster/nodes", `{"id":"n9","raft_addr":"a:1","http_addr":"a:2"}`); r.status != 200 || len(leaderSvc.joined) != 1 {
		t.Fatalf("forwarded join: %d %s", r.status, r.body)
	}
	// An already-forwarded request is never forwarded again.
	r = do(t, follower, "POST", "/v1/stores/fw/events", `{"type":"t","data":1}`, "Herald-Forwarded", "1")
	if r.status != 503 || errCode(t, r.body) != "no_leader" || r.header.Get("Retry-After") == "" {
		t.Fatalf("loop guard: %d %s", r.status, r.body)
	}
	// Leader unknown → 503 no_leader.
	followerSvc.leader = ""
	r = do(t, follower, "POST", "/v1/stores/fw/events", `{"type":"t","data":1}`)
	if r.status != 503 || errCode(t, r.body) != "no_leader" {
		t.Fatalf("no leader: %d %s", r.status, r.body)
	}
	// Leader unreachable → 503 no_leader.
	followerSvc.leader = "127.0.0.1:1"
	r = do(t, follower, "POST", "/v1/stores/fw/events", `{"type":"t","data":1}`)
	if r.status != 503 || errCode(t, r.body) != "no_leader" || r.header.Get("Retry-After") == "" {
		t.Fatalf("unreachable leader: %d %s", r.status, r.body)
	}
}

func TestConcurrentPublishesGetDistinctSeqs(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	var wg sync.WaitGroup
	seqs := make(chan uint64, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, srv, "POST", "/v1/stores/c/events", `{"type":"t","data":1}`)
			var ev struct {
				Seq uint64 `json:"seq"`
			}
			json.Unmarshal(r.body, &ev)
			seqs <- ev.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if s < 1 || s > 100 || seen[s] {
			t.Fatalf("seq %d out of range or repeated", s)
		}
		seen[s] = true
	}
}

func BenchmarkPublishSingle(b *testing.B) {
	f := &fakeService{}
	db, err := openBenchDB(b)
	if err != nil {
		b.Fatal(err)
	}
	f.db = db
	srv := httptest.NewServer(New(Services{Events: f}, quiet()))
	defer srv.Close()
	body := `{"type":"store/order/created","data":"` + strings.Repeat("x", 510) + `"}`
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := http.Post(srv.URL+"/v1/stores/bench/events", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	})
}

func TestBackupStreamsAConsistentFile(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	do(t, srv, "POST", "/v1/stores/b/events", `{"type":"t","data":1}`)
	r := do(t, srv, "GET", "/v1/backup", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("backup: %d %v", r.status, r.header)
	}
	path := filepath.Join(t.TempDir(), "b.db")
	if err := os.WriteFile(path, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := hlog.CheckFile(path); err != nil {
		t.Fatalf("backup is not a consistent bbolt file: %v", err)
	}
	db, err := hlog.Open(path, hlog.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if si, err := db.Store("b"); err != nil || si.LastSeq != 1 {
		t.Fatalf("backup content: %+v %v", si, err)
	}
}
