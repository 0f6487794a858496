package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// newAuthServer serves f with authentication on, and returns an admin key.
func newAuthServer(t *testing.T, f *fakeService, opts ...Option) (*httptest.Server, string) {
	t.Helper()
	var used []string
	opts = append(opts, WithAuth(f, func(id string) { used = append(used, id) }))
	srv := httptest.NewServer(New(All(f), quiet(), opts...))
	t.Cleanup(srv.Close)
	admin, err := f.CreateKey(t.Context(), api.KeyRequest{Name: "admin", Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, admin.Key
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

func TestKeyRoutes(t *testing.T) {
	f := newFake(t)
	srv, admin := newAuthServer(t, f)
	r := do(t, srv, "POST", "/v1/keys", `{"name":"ci","grants":[{"stores":["shop-*"],"actions":["publish"]}],"expires_at":"2099-01-01T00:00:00Z"}`, bearer(admin)...)
	if r.status != 201 || r.header.Get("Location") == "" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var k api.Key
	json.Unmarshal(r.body, &k)
	if !strings.HasPrefix(k.Key, "hk_") || k.ID == "" || len(k.Grants) != 1 {
		t.Fatalf("created %+v", k)
	}
	if r := do(t, srv, "GET", "/v1/keys/"+k.ID, "", bearer(admin)...); r.status != 200 || strings.Contains(string(r.body), k.Key) {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/keys", "", bearer(admin)...); r.status != 200 || !strings.Contains(string(r.body), k.ID) || strings.Contains(string(r.body), k.Key) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// It can read who it is, and only itself.
	var self api.Self
	sr := do(t, srv, "GET", "/v1/self", "", bearer(k.Key)...)
	if sr.status != 200 || json.Unmarshal(sr.body, &self) != nil {
		t.Fatalf("self: %d %s", sr.status, sr.body)
	}
	if self.KeyID != k.ID || self.Name != "ci" || self.Admin || len(self.Grants) != 1 || self.Grants[0].Actions[0] != api.ActionPublish || strings.Contains(string(sr.body), k.Key) {
		t.Fatalf("self: %+v", self)
	}
	if r := do(t, srv, "GET", "/v1/self", "", bearer(admin)...); r.status != 200 || !strings.Contains(string(r.body), `"admin":true`) {
		t.Fatalf("self, admin: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/self", ""); r.status != 401 {
		t.Fatalf("self without a key: %d %s", r.status, r.body)
	}
	// The new key publishes to shop-1 and nothing else.
	if r := do(t, srv, "POST", "/v1/stores/shop-1/events", `{"type":"a","data":1}`, bearer(k.Key)...); r.status != 201 {
		t.Fatalf("publish with grant: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/stores/shop-1/events", ""},
		{"POST", "/v1/stores/plant-1/events", `{"type":"a","data":1}`},
		{"GET", "/v1/keys", ""},
		{"GET", "/v1/cluster", ""},
		{"GET", "/v1/backup", ""},
		{"PUT", "/v1/stores/shop-1", `{"retention":{"max_events":1}}`},
		{"GET", "/v1/stores/shop-1/subscriptions", ""},
	} {
		if r := do(t, srv, c.method, c.path, c.body, bearer(k.Key)...); r.status != 403 || errCode(t, r.body) != "forbidden" {
			t.Errorf("%s %s with a publish key: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	// GET /v1/stores lists only what the key may read: nothing.
	if r := do(t, srv, "GET", "/v1/stores", "", bearer(k.Key)...); r.status != 200 || strings.Contains(string(r.body), "shop-1") {
		t.Fatalf("stores with a publish-only key: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/stores", "", bearer(admin)...); !strings.Contains(string(r.body), "shop-1") {
		t.Fatalf("stores with admin: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/secrets/rotate-key", "", bearer(k.Key)...); r.status != 403 {
		t.Fatalf("rotate the data key with a publish key: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/secrets/rotate-key", "", bearer(admin)...); r.status != 200 || !strings.Contains(string(r.body), `"key_id":1`) {
		t.Fatalf("rotate the data key: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "DELETE", "/v1/keys/"+k.ID, "", bearer(admin)...); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/stores/shop-1/events", `{"type":"a","data":1}`, bearer(k.Key)...); r.status != 401 || errCode(t, r.body) != "unauthorized" {
		t.Fatalf("revoked key: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "DELETE", "/v1/keys/"+k.ID, "", bearer(admin)...); r.status != 404 {
		t.Fatalf("revoke twice: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/keys", `{"name":"x","grants":[{"stores":["a*b"],"actions":["read"]}]}`, bearer(admin)...); r.status != 400 || errCode(t, r.body) != "invalid_key" {
		t.Fatalf("bad pattern: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/keys", `{"name":"x","grants":[{"stores":["a"],"actions":["delete"]}]}`, bearer(admin)...); r.status != 400 || errCode(t, r.body) != "invalid_key" {
		t.Fatalf("bad action: %d %s", r.status, r.body)
	}
}

func TestUnauthorized(t *testing.T) {
	f := newFake(t)
	srv, _ := newAuthServer(t, f)
	for _, h := range [][]string{nil, bearer("hk_nope"), {"Authorization", "Basic abc"}, {"Authorization", "Bearer "}} {
		r := do(t, srv, "GET", "/v1/stores", "", h...)
		if r.status != 401 || errCode(t, r.body) != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%v: %d %s", h, r.status, r.body)
		}
		if strings.Contains(string(r.body), "hk_nope") {
			t.Errorf("the answer repeats the key: %s", r.body)
		}
	}
	// /healthz, /readyz and hello need no key.
	for _, p := range []string{"/healthz", "/readyz", "/v1/cluster/hello"} {
		if r := do(t, srv, "GET", p, ""); r.status != 200 {
			t.Errorf("%s without a key: %d %s", p, r.status, r.body)
		}
	}
}

func TestHeraldStoreNeedsItsName(t *testing.T) {
	f := newFake(t)
	srv, admin := newAuthServer(t, f)
	star, _ := f.CreateKey(t.Context(), api.KeyRequest{Name: "all", Grants: []api.Grant{{Stores: []string{"*"}, Actions: []api.Action{api.ActionRead}}}})
	named, _ := f.CreateKey(t.Context(), api.KeyRequest{Name: "ops", Grants: []api.Grant{{Stores: []string{"_herald"}, Actions: []api.Action{api.ActionRead}}}})
	for key, want := range map[string]int{star.Key: 403, named.Key: 200, admin: 200} {
		if r := do(t, srv, "GET", "/v1/stores/_herald/events", "", bearer(key)...); r.status != want {
			t.Errorf("read _herald: %d, want %d (%s)", r.status, want, r.body)
		}
	}
	if r := do(t, srv, "GET", "/v1/stores/shop-1/events", "", bearer(star.Key)...); r.status != 200 {
		t.Errorf("* reads shop-1: %d %s", r.status, r.body)
	}
}

func TestOnlyJSONBodies(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""} {
		req, _ := http.NewRequestWithContext(testContext(t), "POST", srv.URL+"/v1/stores/shop-1/subscriptions", strings.NewReader(`{"url":"http://127.0.0.1:9/x","from_seq":1}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		r, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 415 {
			t.Errorf("Content-Type %q: %d, want 415", ct, r.StatusCode)
		}
	}
	if subs, _ := f.ListSubscriptions(t.Context(), "shop-1", api.ConsistencyLocal); len(subs) != 0 {
		t.Fatalf("a refused body created %d subscriptions", len(subs))
	}
	// No Content-Type is fine for an empty body.
	cr := do(t, srv, "POST", "/v1/stores/shop-1/subscriptions", `{"url":"http://127.0.0.1:9/x"}`)
	var created api.Subscription
	if err := json.Unmarshal(cr.body, &created); err != nil || cr.status != 201 {
		t.Fatalf("create: %d %s", cr.status, cr.body)
	}
	sub := created.ID
	req, _ := http.NewRequestWithContext(testContext(t), "POST", srv.URL+"/v1/stores/shop-1/subscriptions/"+sub+"/pause", nil)
	r, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("empty body without Content-Type: %d", r.StatusCode)
	}
}

func TestOriginAndHost(t *testing.T) {
	f := newFake(t)
	srv := httptest.NewServer(New(All(f), quiet(), WithCORS([]string{"https://app.example"}), WithHostCheck([]string{"herald.internal"})))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		origin, host string
		want         int
	}{
		{"", "", 200},
		{"http://" + host, "", 200},          // the node's own page
		{"https://app.example", "", 200},     // listed
		{"https://evil.example", "", 403},    // CSRF
		{"", "rebound.evil.example:80", 403}, // DNS rebinding
		{"", "localhost:8080", 200},
		{"", "herald.internal:8080", 200},
	}
	for _, c := range cases {
		h := []string{}
		if c.origin != "" {
			h = append(h, "Origin", c.origin)
		}
		req, _ := http.NewRequestWithContext(testContext(t), "GET", srv.URL+"/v1/stores", nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		if c.host != "" {
			req.Host = c.host
		}
		r, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Errorf("origin %q host %q: %d, want %d", c.origin, c.host, r.StatusCode, c.want)
		}
		if c.origin == "https://app.example" && r.Header.Get("Access-Control-Allow-Origin") != c.origin {
			t.Errorf("listed origin: no Access-Control-Allow-Origin")
		}
	}
	// A preflight from a listed origin is answered; from another refused.
	// (CORS preflights are not API operations: the OpenAPI-checking client
	// is not used for them.)
	plain := &http.Client{Transport: &http.Transport{}}
	for origin, want := range map[string]int{"https://app.example": 204, "https://evil.example": 403} {
		req, _ := http.NewRequestWithContext(testContext(t), "OPTIONS", srv.URL+"/v1/stores/shop-1/events", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		r, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("preflight from %s: %d, want %d", origin, r.StatusCode, want)
		}
	}
}

func TestJoinTokenRoute(t *testing.T) {
	f := newFake(t)
	srv, admin := newAuthServer(t, f)
	r := do(t, srv, "POST", "/v1/cluster/tokens", `{"ttl":"10m"}`, bearer(admin)...)
	var tok api.JoinToken
	if err := json.Unmarshal(r.body, &tok); r.status != 201 || err != nil || !strings.HasPrefix(tok.Token, "hjt_") {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	if f.tokenTTL.String() != "10m0s" {
		t.Fatalf("service got ttl %v", f.tokenTTL)
	}
	for _, body := range []string{`{"ttl":"0s"}`, `{"ttl":"169h"}`, `{"ttl":"soon"}`} {
		if r := do(t, srv, "POST", "/v1/cluster/tokens", body, bearer(admin)...); r.status != 400 || errCode(t, r.body) != "invalid_token" {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	// The enroll route is not on the public API.
	if r := do(t, srv, "POST", "/v1/cluster/enroll", `{}`); r.status != 404 {
		t.Errorf("enroll on the public API: %d", r.status)
	}
}

// TestLoopGuard: a request carrying Herald-Subscription (one of Herald's
// own deliveries, e.g. a subscription pointed at its own /test, which once
// recursed 2,558 times) is refused and changes nothing.
func TestLoopGuard(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	r := do(t, srv, "POST", "/v1/stores/s/events", `{"type":"t","data":1}`, api.HeaderSubscription, "sub_x")
	if r.status != 403 || errCode(t, r.body) != "forbidden" {
		t.Fatalf("a delivery calling the API: %d %s", r.status, r.body)
	}
	if stores, _ := f.Stores(t.Context(), api.ConsistencyLocal); len(stores) != 0 {
		t.Fatalf("the refused delivery created %d stores", len(stores))
	}
}
