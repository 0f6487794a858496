package httpapi

import (
	"errors"
	"strings"
	"testing"

	hlog "github.com/herald-io/herald/log"
)

// The fake reports health from its log as node does, so that every
// subscription answer the tests get carries a health object the OpenAPI
// document must describe.
func (f *fakeService) SubscriptionHealth(sub *hlog.Subscription) (SubscriptionHealth, error) {
	var h SubscriptionHealth
	if st, err := f.db.Store(sub.Store); err == nil && st.LastSeq > sub.Cursor {
		h.LagEvents = st.LastSeq - sub.Cursor
		if ev, err := f.db.GetSeq(sub.Store, sub.Cursor+1); err == nil {
			h.OldestPendingAt = ev.Timestamp
		}
	}
	n, err := f.db.RetryCount(sub.ID)
	if err != nil && !errors.Is(err, hlog.ErrSubscriptionNotFound) {
		return h, err
	}
	h.RetryPending = n
	if a, ok, err := f.db.LastAttempt(sub.ID); err != nil {
		return h, err
	} else if ok {
		h.LastAttempt = &a
	}
	return h, nil
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
