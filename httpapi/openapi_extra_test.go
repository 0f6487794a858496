package httpapi

import (
	"strings"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// TestOpenAPIValidVariants sends requests the document allows in forms the
// other tests do not use, so that a document stricter than the server (a
// valid request the contract refuses) or an answer shape only these reach
// shows up. The checking transport validates each exchange; here each must
// succeed.
func TestOpenAPIValidVariants(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"HTTPS://example.com:8443/hook?x=1","types":["store.order.**","*"],"max_in_flight":256,"rate_limit":0.5,"retry_schedule":[],"headers":{}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sub := decodeSub(t, r).ID
	s := "/v1/stores/shop/subscriptions/" + sub
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
	}{
		{"publish, version and id", "POST", "/v1/stores/shop/events", `{"id":"o:1001.created-x_y","type":"store/order/created","version":"2.0-beta_1","data":null}`, nil, 201},
		{"publish, key", "POST", "/v1/stores/shop/events", `{"type":"t","data":[1,"x",{}]}`, []string{"Idempotency-Key", "order-1001:created/~!"}, 201},
		{"publish, key again", "POST", "/v1/stores/shop/events", `{"type":"t","data":[1,"x",{}]}`, []string{"Idempotency-Key", "order-1001:created/~!"}, 200},
		{"batch", "POST", "/v1/stores/shop/events", `{"events":[{"id":"b1","type":"t","data":"s"},{"id":"b2","type":"t","data":true}]}`, nil, 201},
		{"batch again", "POST", "/v1/stores/shop/events", `{"events":[{"id":"b1","type":"t","data":"s"},{"id":"b2","type":"t","data":true}]}`, nil, 200},
		{"content type with a charset", "POST", "/v1/stores/shop/events", `{"type":"t","data":1}`, []string{"Content-Type", "application/json; charset=utf-8"}, 201},
		{"read, every parameter", "GET", "/v1/stores/shop/events?after=0&limit=1000&type=t,store/*/created&type=**&wait=0&consistency=leader", "", nil, 200},
		{"read, wait in seconds", "GET", "/v1/stores/shop/events?after=1&wait=1", "", nil, 200},
		{"read, fractional wait", "GET", "/v1/stores/shop/events?after=1&wait=0.5s", "", nil, 200},
		{"read _herald", "GET", "/v1/stores/_herald/events?consistency=local", "", nil, 200},
		{"get event, local", "GET", "/v1/stores/shop/events/b1?consistency=local", "", nil, 200},
		{"store, linearizable", "GET", "/v1/stores/shop?consistency=linearizable", "", nil, 200},
		{"stores, local", "GET", "/v1/stores?consistency=local", "", nil, 200},
		{"retention, age only", "PUT", "/v1/stores/shop", `{"retention":{"max_age":"1h30m"}}`, nil, 200},
		{"retention, server default", "PUT", "/v1/stores/shop", `{"retention":{}}`, nil, 200},
		{"retention, zero values", "PUT", "/v1/stores/shop", `{"retention":{"max_age":"","max_events":0}}`, nil, 200},
		{"create, empty secret", "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/","secret":""}`, nil, 201},
		{"subscriptions, local", "GET", "/v1/stores/shop/subscriptions?consistency=local", "", nil, 200},
		{"patch everything", "PATCH", s, `{"url":"http://127.0.0.1:9/x","types":[],"description":"d","enabled":true,"ordered":true,"max_in_flight":1,"rate_limit":100000,"timeout":"100ms","retry_schedule":["100ms","168h"],"headers":{"X-Token":"t"},"disable_after":"1s"}`, nil, 200},
		{"rotate, no body", "POST", s + "/secret/rotate", "", nil, 200},
		{"rotate, empty fields", "POST", s + "/secret/rotate", `{"secret":"","grace":""}`, nil, 200},
		{"rotate, secret and no grace", "POST", s + "/secret/rotate", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","grace":"0s"}`, nil, 200},
		{"replay since", "POST", s + "/replay", `{"since":"2020-01-01T00:00:00.5+02:00"}`, nil, 202},
		{"replay dead", "POST", s + "/replay", `{"from_seq":1,"only":"dead"}`, nil, 202},
		{"pending", "GET", s + "/deliveries?status=pending&limit=1", "", nil, 200},
		{"dead", "GET", s + "/deliveries?status=dead&after=0&consistency=local", "", nil, 200},
		{"event deliveries", "GET", s + "/deliveries/b1?consistency=local", "", nil, 200},
		{"redeliver", "POST", s + "/deliveries/b2/redeliver", "", nil, 202},
		{"cluster, local", "GET", "/v1/cluster?consistency=local", "", nil, 200},
		{"join a non-voter", "POST", "/v1/cluster/nodes", `{"id":"n4","raft_addr":"10.0.0.4:8081","http_addr":"10.0.0.4:8080","voter":false}`, nil, 200},
		{"transfer, any voter", "POST", "/v1/cluster/leader/transfer", `{}`, nil, 200},
	}
	for _, tc := range cases {
		r := do(t, srv, tc.method, tc.path, tc.body, tc.hdr...)
		if r.status != tc.status {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, tc.method, tc.path, r.status, r.body, tc.status)
		}
	}
}

// TestOpenAPIAnswerShapes reaches answers the other tests do not: delivery
// log entries with request and response headers, a transport error and a
// next attempt, the retry set, and a retention answer with both limits.
func TestOpenAPIAnswerShapes(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"id":"e1","type":"t","data":1},{"id":"e2","type":"t","data":2}]}`)
	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/hook","from_seq":1}`)
	id := decodeSub(t, r).ID
	sub, err := f.db.Subscription(id)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UnixNano()
	err = f.db.Update(func(tx *hlog.Tx) error {
		return tx.ApplyDeliveries(hlog.DeliveryBatch{Subs: []hlog.SubDelivery{{ID: id, Epoch: sub.Epoch, Cursor: 2, Attempts: []hlog.Attempt{
			{EventID: "e1", Seq: 1, Attempt: 1, At: at, Duration: 1500, Status: 503, Outcome: hlog.OutcomeFailed, NextAt: at + int64(time.Minute),
				RequestHeaders: [][2]string{{"webhook-id", "e1"}}, ResponseHeaders: [][2]string{{"retry-after", "30"}}, ResponseBody: "busy"},
			{EventID: "e2", Seq: 2, Attempt: 1, At: at, Status: 410, Outcome: hlog.OutcomeDead, Error: "gone"},
		}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "?status=failed", "?status=dead", "?status=pending"} {
		if r := do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id+"/deliveries"+q, ""); r.status != 200 {
			t.Errorf("deliveries%s: %d %s", q, r.status, r.body)
		}
	}
	if r := do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id+"/deliveries/e1", ""); r.status != 200 || !strings.Contains(string(r.body), `"response_body":"busy"`) {
		t.Errorf("event deliveries: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id, ""); r.status != 200 {
		t.Errorf("subscription: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "PUT", "/v1/stores/shop", `{"retention":{"max_age":"720h","max_events":1}}`); r.status != 200 {
		t.Errorf("retention: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/stores/shop", ""); r.status != 200 {
		t.Errorf("store: %d %s", r.status, r.body)
	}
}
