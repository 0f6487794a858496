package raftstore

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

func TestDeliveriesCommandRoundTrip(t *testing.T) {
	in := hlog.DeliveryBatch{Now: 42, Keep: 7,
		Subs: []hlog.SubDelivery{
			{ID: "sub_a", Epoch: 3, Cursor: 10, Disable: hlog.DisabledGone,
				State: &hlog.DeliveryState{FailingSince: 5, Failures: 2, BreakerOpen: true},
				Attempts: []hlog.Attempt{{EventID: "e1", Seq: 9, Attempt: 2, At: 100, Duration: 3, Manual: true,
					RequestHeaders: [][2]string{{"user-agent", "Herald/x"}}, Status: 503, ResponseHeaders: [][2]string{{"retry-after", "1"}},
					ResponseBody: "busy", Error: "", Outcome: hlog.OutcomeFailed, NextAt: 200}}},
			{ID: "sub_b", Epoch: 1, Attempts: []hlog.Attempt{}},
		},
		Events: []hlog.NewEvent{{ID: "op", Type: "herald.delivery.dead", Version: "1", Timestamp: 42, Data: []byte(`{"a":1}`)}},
	}
	b := EncodeDeliveries(&in)
	got, err := decodeDeliveries(wire.NewReader(b[2:]))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	for cut := 3; cut < len(b); cut += 7 {
		if _, err := decodeDeliveries(wire.NewReader(b[2:cut])); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
}

// TestSubscriptionCommandsThroughFSM applies every subscription command as
// a Raft entry and checks client errors come back as results.
func TestSubscriptionCommandsThroughFSM(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	idx := uint64(0)
	apply := func(cmd []byte) SubResult {
		t.Helper()
		idx++
		res := f.ApplyBatch([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: cmd}})[0]
		sr, ok := res.(SubResult)
		if !ok {
			t.Fatalf("result %T", res)
		}
		return sr
	}
	f.ApplyBatch([]*raft.Log{appendEntry(1, "shop", "e1", "e2")})
	idx = 1
	sub := hlog.Subscription{ID: "sub_1", Store: "shop", URL: "https://example.com/h", CreatedAt: 1, UpdatedAt: 1,
		Secrets: []hlog.Secret{{Key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	sub.ApplyDefaults()
	if r := apply(encodeCreateSub(&sub, 0)); r.Err != nil || r.Sub.Cursor != 2 {
		t.Fatalf("create: %+v", r)
	}
	if r := apply(encodeCreateSub(&sub, 0)); !errors.Is(r.Err, hlog.ErrSubscriptionExists) {
		t.Fatalf("create twice: %v", r.Err)
	}
	bad := "not a url"
	if r := apply(encodePatchSub("sub_1", &hlog.SubPatch{URL: &bad}, 2)); !errors.Is(r.Err, hlog.ErrInvalidSubscription) {
		t.Fatalf("bad patch: %v", r.Err)
	}
	to := 30 * time.Second
	if r := apply(encodePatchSub("sub_1", &hlog.SubPatch{Timeout: &to}, 3)); r.Err != nil || r.Sub.Timeout != to || r.Sub.UpdatedAt != 3 {
		t.Fatalf("patch: %+v", r)
	}
	if r := apply(encodeRotate("sub_1", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 100, 4)); r.Err != nil || len(r.Sub.Secrets) != 2 {
		t.Fatalf("rotate: %+v", r)
	}
	if r := apply(encodeRedeliver("sub_1", 1, 5)); r.Err != nil || r.Retry.EventID != "e1" {
		t.Fatalf("redeliver: %+v", r)
	}
	if r := apply(encodeReplay("sub_1", 1, false, 6)); r.Err != nil || r.N != 2 {
		t.Fatalf("replay: %+v", r)
	}
	if r := apply(EncodeDeliveries(&hlog.DeliveryBatch{Subs: []hlog.SubDelivery{{ID: "sub_1", Epoch: 2, Cursor: 2,
		Attempts: []hlog.Attempt{{EventID: "e1", Seq: 1, Attempt: 1, Status: 200, Outcome: hlog.OutcomeSucceeded}}}}})); r.Err != nil {
		t.Fatalf("deliveries: %v", r.Err)
	}
	if s, _ := d.Subscription("sub_1"); s.Cursor != 2 || s.NextAttempt != 2 {
		t.Fatalf("after deliveries: cursor %d next attempt %d", s.Cursor, s.NextAttempt)
	}
	if r := apply(encodeDeleteSub("sub_1")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := apply(encodeDeleteSub("sub_1")); !errors.Is(r.Err, hlog.ErrSubscriptionNotFound) {
		t.Fatalf("delete twice: %v", r.Err)
	}
	// A policy the log refuses is a result too (a storage error would be
	// retried forever and stall the node).
	if r := apply(encodeRetention("shop", hlog.Retention{MaxAge: time.Second})); !errors.Is(r.Err, hlog.ErrInvalidRetention) {
		t.Fatalf("bad retention: %v", r.Err)
	}
	if r := apply(encodeRetention("shop", hlog.Retention{MaxEvents: 10})); r.Err != nil {
		t.Fatalf("retention: %v", r.Err)
	}
}
