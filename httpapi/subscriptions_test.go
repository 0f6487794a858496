package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// subJSON is a subscription as the API answers it.
type subJSON = api.Subscription

func decodeSub(t *testing.T, r resp) subJSON {
	t.Helper()
	var s subJSON
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	return s
}

func TestSubscriptionCRUD(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"type":"t","data":1},{"type":"t","data":2}]}`)

	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/hook","types":["store/order/*"]}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	s := decodeSub(t, r)
	if r.header.Get("Location") != "/v1/stores/shop/subscriptions/"+s.ID || !strings.HasPrefix(s.Secret, "whsec_") {
		t.Fatalf("create answer: %v %+v", r.header, s)
	}
	want := subJSON{ID: s.ID, Store: "shop", URL: "https://example.com/hook", Types: []string{"store/order/*"}, Enabled: true,
		MaxInFlight: 16, Timeout: "15s", RetrySchedule: []string{"5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"},
		Headers: map[string]string{}, DisableAfter: "120h", Status: "active", Cursor: 2, Secret: s.Secret,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if b1, b2 := mustJSON(s), mustJSON(want); b1 != b2 {
		t.Fatalf("create:\n got %s\nwant %s", b1, b2)
	}
	// The secret is shown once.
	r = do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+s.ID, "")
	if got := decodeSub(t, r); r.status != 200 || got.Secret != "" || got.ID != s.ID {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/subscriptions", "")
	if r.status != 200 || strings.Contains(string(r.body), "whsec_") || !strings.Contains(string(r.body), s.ID) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// PATCH changes only what it names.
	time.Sleep(2 * time.Millisecond) // updated_at must move on a coarse clock
	r = do(t, srv, "PATCH", "/v1/stores/shop/subscriptions/"+s.ID, `{"description":"orders","retry_schedule":["200ms","1m30s"],"enabled":false}`)
	p := decodeSub(t, r)
	if r.status != 200 || p.Description != "orders" || p.URL != s.URL || p.Status != "paused" || p.Enabled ||
		strings.Join(p.RetrySchedule, ",") != "200ms,1m30s" || p.UpdatedAt == s.UpdatedAt || p.CreatedAt != s.CreatedAt {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+s.ID+"/enable", ""); r.status != 200 || decodeSub(t, r).Status != "active" {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	if r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+s.ID+"/pause", ""); r.status != 200 || decodeSub(t, r).Status != "paused" {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+s.ID+"/secret/rotate", `{"grace":"1h"}`)
	if rot := decodeSub(t, r); r.status != 200 || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == s.Secret {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if sub, _ := f.db.Subscription(s.ID); len(sub.Secrets) != 2 {
		t.Fatalf("after rotate %d secrets", len(sub.Secrets))
	}
	// Another store does not see it.
	if r = do(t, srv, "GET", "/v1/stores/other/subscriptions/"+s.ID, ""); r.status != 404 || errCode(t, r.body) != "not_found" {
		t.Fatalf("other store: %d %s", r.status, r.body)
	}
	if r = do(t, srv, "DELETE", "/v1/stores/other/subscriptions/"+s.ID, ""); r.status != 404 {
		t.Fatalf("delete via other store: %d", r.status)
	}
	if r = do(t, srv, "DELETE", "/v1/stores/shop/subscriptions/"+s.ID, ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r = do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+s.ID, ""); r.status != 404 {
		t.Fatalf("after delete: %d", r.status)
	}
	// Create with everything.
	r = do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"http://127.0.0.1:9/x","ordered":true,"rate_limit":5,"timeout":"2s",
		"headers":{"Authorization":"Bearer x"},"disable_after":"1h","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","from_seq":1,"enabled":false,"description":"d"}`)
	s = decodeSub(t, r)
	if r.status != 201 || !s.Ordered || s.MaxInFlight != 1 || s.Cursor != 0 || s.Status != "paused" || s.Secret != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" ||
		s.Headers["Authorization"] != "Bearer x" || s.Timeout != "2s" || s.DisableAfter != "1h" || s.RateLimit != 5 {
		t.Fatalf("full create: %d %s", r.status, r.body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSubscriptionBadInput: every case is a 400 with a clear code, and
// nothing changes.
func TestSubscriptionBadInput(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/hook"}`)
	id := decodeSub(t, r).ID
	before, _ := f.db.Subscription(id)
	long := make([]string, 33)
	for i := range long {
		long[i] = `"1s"`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"missing url", "POST", "", `{}`, 400, "invalid_subscription"},
		{"ftp url", "POST", "", `{"url":"ftp://example.com/"}`, 400, "invalid_subscription"},
		{"no host", "POST", "", `{"url":"https:///x"}`, 400, "invalid_subscription"},
		{"credentials in url", "POST", "", `{"url":"https://u:p@example.com/"}`, 400, "invalid_subscription"},
		{"unknown field", "POST", "", `{"url":"https://example.com/","colour":"red"}`, 400, "invalid_subscription"},
		{"wrong type", "POST", "", `{"url":"https://example.com/","max_in_flight":"many"}`, 400, "invalid_subscription"},
		{"bad duration", "POST", "", `{"url":"https://example.com/","timeout":"soon"}`, 400, "invalid_subscription"},
		{"delay too short", "POST", "", `{"url":"https://example.com/","retry_schedule":["50ms"]}`, 400, "invalid_subscription"},
		{"too many delays", "POST", "", `{"url":"https://example.com/","retry_schedule":[` + strings.Join(long, ",") + `]}`, 400, "invalid_subscription"},
		{"in flight 0", "POST", "", `{"url":"https://example.com/","max_in_flight":0}`, 400, "invalid_subscription"},
		{"in flight 257", "POST", "", `{"url":"https://example.com/","max_in_flight":257}`, 400, "invalid_subscription"},
		{"ordered with 4", "POST", "", `{"url":"https://example.com/","ordered":true,"max_in_flight":4}`, 400, "invalid_subscription"},
		{"timeout 61s", "POST", "", `{"url":"https://example.com/","timeout":"61s"}`, 400, "invalid_subscription"},
		{"bad pattern", "POST", "", `{"url":"https://example.com/","types":["a..b"]}`, 400, "invalid_subscription"},
		{"reserved header", "POST", "", `{"url":"https://example.com/","headers":{"webhook-id":"x"}}`, 400, "invalid_subscription"},
		{"content-type header", "POST", "", `{"url":"https://example.com/","headers":{"Content-Type":"text/plain"}}`, 400, "invalid_subscription"},
		{"bad secret", "POST", "", `{"url":"https://example.com/","secret":"hunter2"}`, 400, "invalid_subscription"},
		{"from_seq 0", "POST", "", `{"url":"https://example.com/","from_seq":0}`, 400, "invalid_subscription"},
		{"bad store", "POST", "/v1/stores/Bad!/subscriptions", `{"url":"https://example.com/"}`, 400, "invalid_store"},
		{"malformed json", "POST", "", `{"url":`, 400, "invalid_json"},
		{"text/plain", "POST", "", `x`, 415, "unsupported_media_type"},
		{"empty patch", "PATCH", "/" + id, `{}`, 400, "invalid_subscription"},
		{"patch secret", "PATCH", "/" + id, `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, 400, "invalid_subscription"},
		{"patch bad url", "PATCH", "/" + id, `{"url":"nope"}`, 400, "invalid_subscription"},
		{"patch unknown", "PATCH", "/" + id, `{"nope":1}`, 400, "invalid_subscription"},
		{"patch missing", "PATCH", "/sub_missing", `{"description":"x"}`, 404, "not_found"},
		{"rotate bad grace", "POST", "/" + id + "/secret/rotate", `{"grace":"30d"}`, 400, "invalid_subscription"},
		{"rotate grace too long", "POST", "/" + id + "/secret/rotate", `{"grace":"200h"}`, 400, "invalid_subscription"},
		{"rotate bad secret", "POST", "/" + id + "/secret/rotate", `{"secret":"whsec_x"}`, 400, "invalid_subscription"},
		{"replay both", "POST", "/" + id + "/replay", `{"from_seq":1,"since":"2026-01-01T00:00:00Z"}`, 400, "invalid_replay"},
		{"replay neither", "POST", "/" + id + "/replay", `{}`, 400, "invalid_replay"},
		{"replay only x", "POST", "/" + id + "/replay", `{"from_seq":1,"only":"failed"}`, 400, "invalid_replay"},
		{"replay bad since", "POST", "/" + id + "/replay", `{"since":"yesterday"}`, 400, "invalid_replay"},
		{"replay unknown field", "POST", "/" + id + "/replay", `{"from_seq":1,"to_seq":9}`, 400, "invalid_replay"},
		{"replay wrong type", "POST", "/" + id + "/replay", `{"from_seq":"1"}`, 400, "invalid_replay"},
		{"list on a bad store", "GET", "/v1/stores/BAD!/subscriptions", ``, 400, "invalid_store"},
		{"deliveries bad status", "GET", "/" + id + "/deliveries?status=weird", ``, 400, "invalid_parameter"},
		{"deliveries bad limit", "GET", "/" + id + "/deliveries?limit=5000", ``, 400, "invalid_parameter"},
		{"deliveries bad after", "GET", "/" + id + "/deliveries?after=-1", ``, 400, "invalid_parameter"},
		{"redeliver unknown event", "POST", "/" + id + "/deliveries/evt_nope/redeliver", ``, 404, "not_found"},
		{"publish to _herald", "POST", "/v1/stores/_herald/events", `{"type":"t","data":1}`, 400, "reserved_store"},
	}
	for _, tc := range cases {
		path := tc.path
		if !strings.HasPrefix(path, "/v1/") {
			path = "/v1/stores/shop/subscriptions" + path
		}
		var hdr []string
		if tc.name == "text/plain" {
			hdr = []string{"Content-Type", "text/plain"}
		}
		r := do(t, srv, tc.method, path, tc.body, hdr...)
		if r.status != tc.status || errCode(t, r.body) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	after, _ := f.db.Subscription(id)
	if mustJSON(before) != mustJSON(after) {
		t.Fatalf("bad input changed the subscription:\n%+v\n%+v", before, after)
	}
	if subs, _ := f.db.Subscriptions(""); len(subs) != 1 {
		t.Fatalf("bad input created subscriptions: %d", len(subs))
	}
	if _, err := f.db.Store(hlog.HeraldStore); err == nil {
		t.Fatal("a client wrote to _herald")
	}
}

func TestDeliveriesAPI(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/hook"}`)
	id := decodeSub(t, r).ID
	do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"id":"e1","type":"t","data":1},{"id":"e2","type":"t","data":2},{"id":"e3","type":"t","data":3}]}`)
	sub, _ := f.db.Subscription(id)
	at := time.Now().UnixNano()
	err := f.db.Update(func(tx *hlog.Tx) error {
		return tx.ApplyDeliveries(hlog.DeliveryBatch{Subs: []hlog.SubDelivery{{ID: id, Epoch: sub.Epoch, Cursor: 3, Attempts: []hlog.Attempt{
			{EventID: "e1", Seq: 1, Attempt: 1, At: at, Duration: int64(3 * time.Millisecond), Status: 200, Outcome: hlog.OutcomeSucceeded,
				ResponseHeaders: [][2]string{{"content-type", "text/plain"}}, ResponseBody: "thanks"},
			{EventID: "e2", Seq: 2, Attempt: 1, At: at, Status: 500, Outcome: hlog.OutcomeFailed, NextAt: at + int64(time.Hour)},
			{EventID: "e3", Seq: 3, Attempt: 1, At: at, Error: "dial tcp: connection refused", Outcome: hlog.OutcomeDead},
		}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		Deliveries []map[string]any `json:"deliveries"`
		Next       uint64           `json:"next"`
	}
	get := func(q string) page {
		t.Helper()
		r := do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id+"/deliveries"+q, "")
		var p page
		if r.status != 200 || json.Unmarshal(r.body, &p) != nil {
			t.Fatalf("deliveries%s: %d %s", q, r.status, r.body)
		}
		return p
	}
	if p := get(""); len(p.Deliveries) != 3 || p.Next != 0 {
		t.Fatalf("all: %+v", p)
	}
	p := get("?status=succeeded")
	if len(p.Deliveries) != 1 || p.Deliveries[0]["response_body"] != "thanks" || p.Deliveries[0]["duration_ms"].(float64) != 3 ||
		p.Deliveries[0]["status"] != "succeeded" || p.Deliveries[0]["response_status"].(float64) != 200 {
		t.Fatalf("succeeded: %+v", p)
	}
	if p := get("?status=failed"); len(p.Deliveries) != 1 || p.Deliveries[0]["event_id"] != "e2" || p.Deliveries[0]["next_attempt_at"] == nil {
		t.Fatalf("failed: %+v", p)
	}
	if p := get("?status=dead"); len(p.Deliveries) != 1 || p.Deliveries[0]["error"] != "dial tcp: connection refused" {
		t.Fatalf("dead: %+v", p)
	}
	if p := get("?status=pending"); len(p.Deliveries) != 1 || p.Deliveries[0]["status"] != "pending" || p.Deliveries[0]["seq"].(float64) != 2 {
		t.Fatalf("pending: %+v", p)
	}
	if p := get("?limit=2"); len(p.Deliveries) != 2 || p.Next != 2 {
		t.Fatalf("page 1: %+v", p)
	} else if p2 := get("?limit=2&after=2"); len(p2.Deliveries) != 1 || p2.Deliveries[0]["event_id"] != "e3" {
		t.Fatalf("page 2: %+v", p2)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id+"/deliveries/e3", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"event_id":"e3"`) || !strings.Contains(string(r.body), `"status":"dead"`) {
		t.Fatalf("event deliveries: %d %s", r.status, r.body)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+id+"/deliveries/e3/redeliver", "")
	if r.status != 202 || !strings.Contains(string(r.body), `"status":"pending"`) || !strings.Contains(string(r.body), `"seq":3`) {
		t.Fatalf("redeliver: %d %s", r.status, r.body)
	}
	if p := get("?status=pending"); len(p.Deliveries) != 2 {
		t.Fatalf("pending after redeliver: %+v", p)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+id+"/replay", `{"from_seq":2}`)
	if r.status != 202 || !strings.Contains(string(r.body), `"from_seq":2`) || !strings.Contains(string(r.body), `"queued":2`) {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if s, _ := f.db.Subscription(id); s.Cursor != 1 {
		t.Fatalf("cursor after replay %d", s.Cursor)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/subscriptions/"+id+"/test", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"succeeded"`) {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
}

func TestSubscriptionWritesForwarded(t *testing.T) {
	leaderSvc := newFake(t)
	leader := newServer(t, leaderSvc)
	followerSvc := newFake(t)
	followerSvc.notLeader = true
	followerSvc.leader = strings.TrimPrefix(leader.URL, "http://")
	follower := newServer(t, followerSvc)
	r := do(t, follower, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/hook"}`)
	if r.status != 201 || r.header.Get("Herald-Forwarded-To") == "" {
		t.Fatalf("forwarded create: %d %s", r.status, r.body)
	}
	if subs, _ := leaderSvc.db.Subscriptions("shop"); len(subs) != 1 {
		t.Fatal("create did not land on the leader")
	}
	if subs, _ := followerSvc.db.Subscriptions("shop"); len(subs) != 0 {
		t.Fatal("create landed on the follower")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s", 5 * time.Minute: "5m", 2 * time.Hour: "2h", 200 * time.Millisecond: "200ms",
		90 * time.Minute: "1h30m", 24 * time.Hour: "24h", 61 * time.Second: "1m1s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(formatDuration(d)); err != nil || back != d {
			t.Errorf("%v does not round-trip", d)
		}
	}
}

func TestStoreRetentionAPI(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	r := do(t, srv, "PUT", "/v1/stores/shop", `{"retention":{"max_age":"720h","max_events":1000}}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"max_age":"720h"`) || !strings.Contains(string(r.body), `"max_events":1000`) {
		t.Fatalf("put retention: %d %s", r.status, r.body)
	}
	if got, _ := f.db.RetentionOf("shop"); got.MaxAge != 720*time.Hour || got.MaxEvents != 1000 {
		t.Fatalf("stored policy %+v", got)
	}
	for _, body := range []string{`{}`, `{"retention":{"max_age":"30s"}}`, `{"retention":{"max_age":"soon"}}`, `{"retention":{"keep":1}}`,
		`{"retention":{},"colour":"red"}`, `{"retention":{"max_events":"many"}}`} {
		if r := do(t, srv, "PUT", "/v1/stores/shop", body); r.status != 400 || errCode(t, r.body) != "invalid_retention" {
			t.Errorf("%s: %d %s, want 400 invalid_retention", body, r.status, r.body)
		}
	}
	if got, _ := f.db.RetentionOf("shop"); got.MaxEvents != 1000 {
		t.Fatalf("bad input changed the policy: %+v", got)
	}
	// Compacted reads answer 410 with the first seq.
	do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"type":"t","data":1},{"type":"t","data":2},{"type":"t","data":3}]}`)
	if err := f.db.Update(func(tx *hlog.Tx) error { _, err := tx.Compact("shop", 2); return err }); err != nil {
		t.Fatal(err)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/events", "")
	if r.status != 410 || errCode(t, r.body) != "compacted" || r.header.Get("Herald-First-Seq") != "3" {
		t.Fatalf("compacted read: %d %v %s", r.status, r.header, r.body)
	}
	if r = do(t, srv, "GET", "/v1/stores/shop", ""); r.status != 200 || !strings.Contains(string(r.body), `"first_seq":3`) {
		t.Fatalf("store: %d %s", r.status, r.body)
	}
}
