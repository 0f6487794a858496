package httpapi

import (
	"strings"
	"testing"

	hlog "github.com/herald-io/herald/log"
)

// The fake reports health from its log as node does, so that every
// subscription answer the tests get carries a health object the OpenAPI
// document must describe.
func (f *fakeService) SubscriptionHealth(sub *hlog.Subscription) (hlog.Health, error) {
	return f.db.Health(sub)
}

// TestSubscriptionReadsCarryHealth: GET one and GET all add health; the
// answers to writes do not.
func TestSubscriptionReadsCarryHealth(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"a","data":1}`)
	r := do(t, srv, "POST", "/v1/stores/shop/subscriptions", `{"url":"https://example.com/","from_seq":1}`)
	if r.status != 201 || strings.Contains(string(r.body), `"health"`) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := decodeSub(t, r).ID
	one := do(t, srv, "GET", "/v1/stores/shop/subscriptions/"+id, "")
	all := do(t, srv, "GET", "/v1/stores/shop/subscriptions", "")
	for _, got := range []resp{one, all} {
		if got.status != 200 || !strings.Contains(string(got.body), `"health":{"lag_events":`) {
			t.Fatalf("read: %d %s", got.status, got.body)
		}
	}
	if s := decodeSub(t, one); s.Health == nil || s.Health.LagEvents != 1 || s.Health.OldestPendingAt.IsZero() || s.Health.LastAttempt != nil {
		t.Fatalf("health of a subscription one event behind: %+v", s.Health)
	}
}
