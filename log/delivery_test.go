package log

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newSub(id, store string) Subscription {
	s := Subscription{ID: id, Store: store, URL: "https://example.com/hook", Secrets: []Secret{{Key: testSecret}}, CreatedAt: baseTime, UpdatedAt: baseTime}
	s.ApplyDefaults()
	return s
}

func mustCreateSub(t testing.TB, d *DB, s Subscription, from uint64) Subscription {
	t.Helper()
	if err := d.Update(func(tx *Tx) error { return tx.CreateSubscription(s, from) }); err != nil {
		t.Fatal(err)
	}
	got, err := d.Subscription(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func applyDeliveries(t testing.TB, d *DB, b DeliveryBatch) {
	t.Helper()
	if err := d.Update(func(tx *Tx) error { return tx.ApplyDeliveries(b) }); err != nil {
		t.Fatal(err)
	}
}

func attempt(seq uint64, n int, out Outcome) Attempt {
	a := Attempt{EventID: fmt.Sprintf("e%d", seq), Seq: seq, Attempt: n, At: baseTime + int64(n), Duration: 1000,
		Status: 200, Outcome: out, RequestHeaders: [][2]string{{"user-agent", "Herald/test"}}, ResponseBody: "ok"}
	if out != OutcomeSucceeded {
		a.Status, a.ResponseBody = 500, "boom"
	}
	if out == OutcomeFailed {
		a.NextAt = baseTime + int64(time.Second)
	}
	return a
}

func TestSubscriptionCursorStartsAtStoreEndOrFromSeq(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", ev("a", "order.created", `1`), ev("b", "order.created", `2`), ev("c", "order.created", `3`))
	if s := mustCreateSub(t, d, newSub("sub_1", "shop"), 0); s.Cursor != 3 || s.Gen != 1 || s.Epoch != 1 || s.NextAttempt != 1 {
		t.Fatalf("new subscription: cursor %d gen %d epoch %d next attempt %d", s.Cursor, s.Gen, s.Epoch, s.NextAttempt)
	}
	if s := mustCreateSub(t, d, newSub("sub_2", "shop"), 2); s.Cursor != 1 {
		t.Fatalf("from_seq 2: cursor %d, want 1", s.Cursor)
	}
	if s := mustCreateSub(t, d, newSub("sub_3", "empty"), 0); s.Cursor != 0 {
		t.Fatalf("store without events: cursor %d", s.Cursor)
	}
	err := d.Update(func(tx *Tx) error { return tx.CreateSubscription(newSub("sub_1", "shop"), 0) })
	if !errors.Is(err, ErrSubscriptionExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	subs, err := d.Subscriptions("shop")
	if err != nil || len(subs) != 2 {
		t.Fatalf("subscriptions of shop: %d, %v", len(subs), err)
	}
}

func TestSubscriptionValidation(t *testing.T) {
	// Each case breaks one rule; the error must say which.
	oneSecond := make([]time.Duration, MaxRetrySchedule+1)
	for i := range oneSecond {
		oneSecond[i] = time.Second // valid delays: only the count is wrong
	}
	cases := map[string]struct {
		mutate func(*Subscription)
		says   string
	}{
		"ftp url":           {func(s *Subscription) { s.URL = "ftp://example.com/x" }, "http or https"},
		"no host":           {func(s *Subscription) { s.URL = "https:///x" }, "must have a host"},
		"credentials":       {func(s *Subscription) { s.URL = "https://u:p@example.com/" }, "credentials"},
		"bad pattern":       {func(s *Subscription) { s.Types = []string{"order..created"} }, "types"},
		"in flight 0":       {func(s *Subscription) { s.MaxInFlight = 0 }, "max_in_flight must be 1-"},
		"in flight 257":     {func(s *Subscription) { s.MaxInFlight = 257 }, "max_in_flight must be 1-"},
		"ordered with 4":    {func(s *Subscription) { s.Ordered, s.MaxInFlight = true, 4 }, "ordered"},
		"timeout 61s":       {func(s *Subscription) { s.Timeout = 61 * time.Second }, "timeout must be"},
		"delay 50ms":        {func(s *Subscription) { s.RetrySchedule = []time.Duration{50 * time.Millisecond} }, "every delay"},
		"33 delays":         {func(s *Subscription) { s.RetrySchedule = oneSecond }, "at most 32 delays"},
		"reserved header":   {func(s *Subscription) { s.Headers = map[string]string{"webhook-id": "x"} }, "set by Herald"},
		"content-type":      {func(s *Subscription) { s.Headers = map[string]string{"Content-Type": "text/plain"} }, "set by Herald"},
		"header CRLF":       {func(s *Subscription) { s.Headers = map[string]string{"X-A": "a\r\nb: c"} }, "control characters"},
		"bad secret":        {func(s *Subscription) { s.Secrets = []Secret{{Key: "whsec_short"}} }, "base64 of 24-64 bytes"},
		"no secret":         {func(s *Subscription) { s.Secrets = nil }, "secrets"},
		"negative rate":     {func(s *Subscription) { s.RateLimit = -1 }, "rate_limit"},
		"disable_after 0.5": {func(s *Subscription) { s.DisableAfter = 500 * time.Millisecond }, "disable_after"},
		"long description":  {func(s *Subscription) { s.Description = strings.Repeat("x", MaxDescriptionLen+1) }, "description"},
	}
	for name, tc := range cases {
		s := newSub("sub_x", "shop")
		tc.mutate(&s)
		err := s.Validate()
		if !errors.Is(err, ErrInvalidSubscription) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want ErrInvalidSubscription saying %q", name, err, tc.says)
		}
	}
	s := newSub("sub_ok", "shop")
	s.Headers = map[string]string{"Authorization": "Bearer x"}
	s.Types = []string{"store/order/*", "production.order.**"}
	if err := s.Validate(); err != nil {
		t.Fatalf("valid subscription refused: %v", err)
	}
}

func TestPatchRotateAndInvalidPatchChangesNothing(t *testing.T) {
	d := mustOpen(t)
	mustCreateSub(t, d, newSub("sub_1", "shop"), 0)
	url := "ftp://nope"
	err := d.Update(func(tx *Tx) error {
		_, err := tx.PatchSubscription("sub_1", SubPatch{URL: &url}, baseTime+1)
		return err
	})
	if !errors.Is(err, ErrInvalidSubscription) {
		t.Fatalf("invalid patch: %v", err)
	}
	if s, _ := d.Subscription("sub_1"); s.URL != "https://example.com/hook" || s.Gen != 1 {
		t.Fatalf("invalid patch changed the subscription: %+v", s)
	}
	paused := SubPaused
	desc := "orders"
	var got Subscription
	err = d.Update(func(tx *Tx) error {
		var err error
		got, err = tx.PatchSubscription("sub_1", SubPatch{Status: &paused, Description: &desc}, baseTime+2)
		return err
	})
	if err != nil || got.Status != SubPaused || got.Description != "orders" || got.Gen != 2 || got.UpdatedAt != baseTime+2 {
		t.Fatalf("patch: %+v, %v", got, err)
	}
	const newSecret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	err = d.Update(func(tx *Tx) error {
		var err error
		got, err = tx.RotateSecret("sub_1", newSecret, baseTime+100, baseTime+3)
		return err
	})
	if err != nil || len(got.Secrets) != 2 || got.Secrets[0].Key != newSecret || got.Secrets[1].ExpiresAt != baseTime+100 {
		t.Fatalf("rotate: %+v, %v", got.Secrets, err)
	}
	if act := got.ActiveSecrets(baseTime + 50); len(act) != 2 {
		t.Fatalf("during grace %d secrets sign", len(act))
	}
	if act := got.ActiveSecrets(baseTime + 100); len(act) != 1 || act[0] != newSecret {
		t.Fatalf("after grace: %v", act)
	}
}

func TestApplyDeliveriesRetrySetDeadAndCursor(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", ev("e1", "t", `1`), ev("e2", "t", `2`), ev("e3", "t", `3`))
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 1)
	if _, ok, err := d.LastAttempt(s.ID); ok || err != nil {
		t.Fatalf("last attempt before any: ok %v, %v", ok, err)
	}
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime, Keep: 100, Subs: []SubDelivery{{
		ID: s.ID, Epoch: s.Epoch, Cursor: 3,
		Attempts: []Attempt{attempt(1, 1, OutcomeSucceeded), attempt(2, 1, OutcomeFailed), attempt(3, 1, OutcomeFailed)},
		State:    &DeliveryState{FailingSince: baseTime, Failures: 2},
	}}})
	s, _ = d.Subscription(s.ID)
	if s.Cursor != 3 || s.Failures != 2 || s.NextAttempt != 4 {
		t.Fatalf("after batch 1: cursor %d failures %d next %d", s.Cursor, s.Failures, s.NextAttempt)
	}
	rs, _ := d.Retries(s.ID, 0, 0)
	if len(rs) != 2 || rs[0].Seq != 2 || rs[0].Attempts != 1 || rs[0].LastError != "HTTP 500" {
		t.Fatalf("retry set: %+v", rs)
	}
	// seq 2 succeeds, seq 3 dies; a batch of a stale epoch records the
	// attempts but does not move the cursor or the state.
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime, Keep: 100, Events: []NewEvent{{ID: "op1", Type: "herald.delivery.dead", Version: "1", Timestamp: baseTime, Data: []byte(`{}`)}},
		Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch - 1, Cursor: 99, State: &DeliveryState{},
			Attempts: []Attempt{attempt(2, 2, OutcomeSucceeded), attempt(3, 2, OutcomeDead)}}}})
	s, _ = d.Subscription(s.ID)
	if s.Cursor != 3 || s.Failures != 2 {
		t.Fatalf("stale epoch moved state: cursor %d failures %d", s.Cursor, s.Failures)
	}
	if rs, _ := d.Retries(s.ID, 0, 0); len(rs) != 0 {
		t.Fatalf("retry set after success and death: %+v", rs)
	}
	dead, _, _ := d.Attempts(s.ID, AttemptQuery{Outcome: OutcomeDead})
	if len(dead) != 1 || dead[0].Seq != 3 || dead[0].Attempt != 2 {
		t.Fatalf("dead set: %+v", dead)
	}
	if op, err := d.Get(HeraldStore, "op1"); err != nil || op.Type != "herald.delivery.dead" {
		t.Fatalf("operational event: %+v %v", op, err)
	}
	all, next, _ := d.Attempts(s.ID, AttemptQuery{})
	if len(all) != 5 || next != 0 || all[4].ID != 5 {
		t.Fatalf("delivery log: %d attempts, next %d", len(all), next)
	}
	if last, ok, err := d.LastAttempt(s.ID); !ok || err != nil || last.ID != 5 || last.Seq != 3 || last.Outcome != OutcomeDead {
		t.Fatalf("last attempt: %+v ok %v, %v", last, ok, err)
	}
	succeeded, _, _ := d.Attempts(s.ID, AttemptQuery{Outcome: OutcomeSucceeded})
	if len(succeeded) != 2 {
		t.Fatalf("succeeded filter: %d", len(succeeded))
	}
	page, next, _ := d.Attempts(s.ID, AttemptQuery{Limit: 2})
	if len(page) != 2 || next != 2 {
		t.Fatalf("page: %d, next %d", len(page), next)
	}
	byEvent, _ := d.EventAttempts(s.ID, 3)
	if len(byEvent) != 2 || byEvent[0].Outcome != OutcomeFailed || byEvent[1].Outcome != OutcomeDead {
		t.Fatalf("attempts of seq 3: %+v", byEvent)
	}
	if byEvent[0].RequestHeaders[0] != [2]string{"user-agent", "Herald/test"} || byEvent[1].ResponseBody != "boom" {
		t.Fatalf("attempt fields lost: %+v", byEvent[0])
	}
}

func TestPruneKeepsLastAttemptsAndDeadOnes(t *testing.T) {
	d := mustOpen(t)
	var evs []NewEvent
	for i := 1; i <= 20; i++ {
		evs = append(evs, ev(fmt.Sprintf("e%d", i), "t", `1`))
	}
	mustAppend(t, d, "shop", evs...)
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 1)
	applyDeliveries(t, d, DeliveryBatch{Keep: 5, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{attempt(1, 10, OutcomeDead)}}}})
	for seq := uint64(2); seq <= 20; seq++ {
		applyDeliveries(t, d, DeliveryBatch{Keep: 5, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{attempt(seq, 1, OutcomeSucceeded)}}}})
	}
	all, _, _ := d.Attempts(s.ID, AttemptQuery{})
	if len(all) != 5 || all[0].Seq != 16 || all[4].Seq != 20 {
		t.Fatalf("kept %d attempts, first seq %d", len(all), all[0].Seq)
	}
	if a, _ := d.EventAttempts(s.ID, 2); len(a) != 0 {
		t.Fatalf("pruned attempt still indexed: %+v", a)
	}
	dead, _ := d.EventAttempts(s.ID, 1)
	if len(dead) != 1 || dead[0].Outcome != OutcomeDead {
		t.Fatalf("the last attempt of a dead delivery must survive pruning: %+v", dead)
	}
	s, _ = d.Subscription(s.ID)
	if s.OldestAttempt != 16 || s.NextAttempt != 21 {
		t.Fatalf("attempt ids: oldest %d next %d", s.OldestAttempt, s.NextAttempt)
	}
}

func TestRedeliverReplayAndDelete(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", ev("e1", "t", `1`), ev("e2", "t", `2`), ev("e3", "t", `3`))
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 0)
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{attempt(2, 1, OutcomeDead)}}}})
	err := d.Update(func(tx *Tx) error { _, err := tx.Redeliver(s.ID, 9, baseTime); return err })
	if !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("redeliver of a missing seq: %v", err)
	}
	err = d.Update(func(tx *Tx) error { _, err := tx.Redeliver(s.ID, 1, baseTime); return err })
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	err = d.Update(func(tx *Tx) error { var err error; n, err = tx.Replay(s.ID, 1, true, baseTime); return err })
	if err != nil || n != 1 {
		t.Fatalf("replay dead: %d, %v", n, err)
	}
	rs, _ := d.Retries(s.ID, 0, 0)
	if len(rs) != 2 || !rs[0].Manual || rs[0].Attempts != 0 || rs[1].Seq != 2 {
		t.Fatalf("retry set after redeliver + replay dead: %+v", rs)
	}
	before, _ := d.Subscription(s.ID)
	err = d.Update(func(tx *Tx) error { var err error; n, err = tx.Replay(s.ID, 2, false, baseTime); return err })
	after, _ := d.Subscription(s.ID)
	if err != nil || n != 2 || after.Cursor != 1 || after.Epoch != before.Epoch+1 {
		t.Fatalf("replay from 2: n %d cursor %d epoch %d->%d %v", n, after.Cursor, before.Epoch, after.Epoch, err)
	}
	if err := d.Update(func(tx *Tx) error { return tx.DeleteSubscription(s.ID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Retries(s.ID, 0, 0); !errors.Is(err, ErrSubscriptionNotFound) {
		t.Fatalf("delivery state after delete: %v", err)
	}
	// Results for a deleted subscription are dropped, not an error.
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Attempts: []Attempt{attempt(3, 1, OutcomeSucceeded)}}}})
}

func TestDisableAndSubsChanged(t *testing.T) {
	d := mustOpen(t)
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 0)
	ch := d.SubsChanged()
	applyDeliveries(t, d, DeliveryBatch{Now: baseTime + 5, Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Disable: DisabledGone}}})
	select {
	case <-ch:
	default:
		t.Fatal("SubsChanged did not fire on disable")
	}
	s2, _ := d.Subscription(s.ID)
	if s2.Status != SubDisabled || s2.DisabledReason != DisabledGone || s2.Gen != s.Gen+1 {
		t.Fatalf("disable: %+v", s2)
	}
	ch = d.SubsChanged()
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Cursor: 0}}})
	select {
	case <-ch:
		t.Fatal("SubsChanged fired on a delivery-state-only batch")
	default:
	}
	active := SubActive
	err := d.Update(func(tx *Tx) error {
		_, err := tx.PatchSubscription(s.ID, SubPatch{Status: &active}, baseTime+6)
		return err
	})
	s3, _ := d.Subscription(s.ID)
	if err != nil || s3.Status != SubActive || s3.DisabledReason != "" {
		t.Fatalf("enable: %+v %v", s3, err)
	}
	bad := DeliveryBatch{Events: []NewEvent{{ID: "x", Type: "bad type!", Version: "1", Timestamp: 1, Data: []byte(`1`)}},
		Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{attempt(1, 1, OutcomeSucceeded)}}}}
	if err := d.Update(func(tx *Tx) error { return tx.ApplyDeliveries(bad) }); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("invalid operational event: %v", err)
	}
	if all, _, _ := d.Attempts(s.ID, AttemptQuery{}); len(all) != 0 {
		t.Fatal("an invalid batch recorded attempts")
	}
}

// TestLateResultKeepsNewerRedelivery: the result of an attempt that
// started before a redelivery was asked for must not clear it.
func TestLateResultKeepsNewerRedelivery(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", ev("e1", "t", `1`))
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 1)
	asked := baseTime + 100
	if err := d.Update(func(tx *Tx) error { _, err := tx.Redeliver(s.ID, 1, asked); return err }); err != nil {
		t.Fatal(err)
	}
	late := attempt(1, 1, OutcomeSucceeded)
	late.At = asked - 50
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{late}}}})
	if rs, _ := d.Retries(s.ID, 0, 0); len(rs) != 1 || !rs[0].Manual {
		t.Fatalf("redelivery lost to a late result: %+v", rs)
	}
	own := attempt(1, 1, OutcomeSucceeded)
	own.At, own.Manual = asked+10, true
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Attempts: []Attempt{own}}}})
	if rs, _ := d.Retries(s.ID, 0, 0); len(rs) != 0 {
		t.Fatalf("the redelivery's own success must clear it: %+v", rs)
	}
}

func TestRetentionCompactsButHoldsBackForSubscriptions(t *testing.T) {
	d := mustOpen(t)
	var evs []NewEvent
	for i := 1; i <= 10; i++ {
		e := ev(fmt.Sprintf("e%d", i), "t", fmt.Sprint(i))
		e.Timestamp = baseTime + int64(i)*int64(time.Hour)
		e.IdempotencyKey = fmt.Sprintf("k%d", i)
		evs = append(evs, e)
	}
	mustAppend(t, d, "shop", evs...)
	s := mustCreateSub(t, d, newSub("sub_1", "shop"), 4) // still has to deliver 4..10
	target, err := d.CompactionTarget("shop", Retention{MaxEvents: 3}, time.Unix(0, baseTime))
	if err != nil || target != 7 {
		t.Fatalf("max_events 3: target %d, %v", target, err)
	}
	at, err := d.CompactionTarget("shop", Retention{MaxAge: 5*time.Hour + time.Minute}, time.Unix(0, baseTime+int64(10*time.Hour)))
	if err != nil || at != 4 {
		t.Fatalf("max_age: target %d, %v", at, err)
	}
	var removed uint64
	if err := d.Update(func(tx *Tx) error { var err error; removed, err = tx.Compact("shop", target); return err }); err != nil {
		t.Fatal(err)
	}
	if removed != 3 {
		t.Fatalf("removed %d, want 3 (the subscription holds back seq 4)", removed)
	}
	if hold, by, _ := d.HoldBack("shop"); hold != 4 || len(by) != 1 || by[0] != s.ID {
		t.Fatalf("hold back %d by %v", hold, by)
	}
	si, _ := d.Store("shop")
	if si.FirstSeq != 4 || si.Events != 7 || si.LastSeq != 10 {
		t.Fatalf("store after compaction: %+v", si)
	}
	if err := d.VerifyChain("shop"); err != nil {
		t.Fatalf("chain after compaction: %v", err)
	}
	_, _, err = d.Read("shop", ReadOptions{After: 0})
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.FirstSeq != 4 || !errors.Is(err, ErrCompacted) {
		t.Fatalf("read of compacted seqs: %v", err)
	}
	if evs, _, err := d.Read("shop", ReadOptions{After: 3}); err != nil || len(evs) != 7 {
		t.Fatalf("read from the first seq: %d %v", len(evs), err)
	}
	if _, err := d.GetSeq("shop", 2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("GetSeq of a compacted seq: %v", err)
	}
	if _, err := d.Get("shop", "e2"); !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("Get of a compacted id: %v", err)
	}
	// The subscription moves on: now everything up to 7 can go.
	applyDeliveries(t, d, DeliveryBatch{Subs: []SubDelivery{{ID: s.ID, Epoch: s.Epoch, Cursor: 9}}})
	if err := d.Update(func(tx *Tx) error { var err error; removed, err = tx.Compact("shop", target); return err }); err != nil || removed != 4 {
		t.Fatalf("second compaction: %d %v", removed, err)
	}
	// A replay from before the start is clamped to it.
	if err := d.Update(func(tx *Tx) error { _, err := tx.Replay(s.ID, 1, false, baseTime); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Subscription(s.ID); got.Cursor != 7 {
		t.Fatalf("replay from 1 after compaction: cursor %d, want 7", got.Cursor)
	}
	// An idempotency key of a removed event no longer deduplicates.
	e := ev("e2-again", "t", `2`)
	e.IdempotencyKey = "k2"
	if res := mustAppend(t, d, "shop", e); res[0].Duplicate || res[0].Event.Seq != 11 {
		t.Fatalf("append after compaction: %+v", res[0])
	}
	if err := d.VerifyChain("shop"); err != nil {
		t.Fatal(err)
	}
}
