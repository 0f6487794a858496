package delivery

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestDeliversSignedEnvelopes(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	sub := e.subscribe(hlog.Subscription{URL: f.url(), Types: []string{"store/order/*"}, Headers: map[string]string{"Authorization": "Bearer t"}})
	e.start()
	seqs := e.publish("shop", "store.order.created", "store.product.saved", "store/order/paid")
	testutil.WaitFor(t, 5*time.Second, "two deliveries", func() bool { return f.count() >= 2 })
	testutil.WaitFor(t, 5*time.Second, "cursor past the skipped event", func() bool { return e.sub(sub.ID).Cursor == seqs[2] })
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, testSecret)
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (the product event does not match)", len(reqs))
	}
	if reqs[0].Seq > reqs[1].Seq { // sent concurrently
		reqs[0], reqs[1] = reqs[1], reqs[0]
	}
	for i, r := range reqs {
		ev, err := e.db.GetSeq("shop", seqs[i*2])
		if err != nil {
			t.Fatal(err)
		}
		if want := ev.AppendEnvelope(nil); !bytes.Equal(r.Body, want) {
			t.Fatalf("body %s, want %s", r.Body, want)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &env); err != nil || len(env) != 7 {
			t.Fatalf("envelope %s: %v", r.Body, err)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Fatalf("the Standard Webhooks library rejects our request: %v", err)
		}
		if err := Verify(testSecret, r.Header, r.Body, 0); err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write(r.Body)
		checks := map[string]string{
			"webhook-id": ev.ID, "Herald-Attempt": "1", "Herald-Store": "shop", "Herald-Seq": strings.TrimSpace(string(env["seq"])),
			"Herald-Subscription": sub.ID, "Content-Type": "application/json", "User-Agent": "Herald/test",
			"Authorization": "Bearer t", "X-Herald-Signature": "sha256=" + hex.EncodeToString(m.Sum(nil)),
		}
		for h, want := range checks {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
	}
	testutil.WaitFor(t, 5*time.Second, "attempts recorded", func() bool { return len(e.attempts(sub.ID, hlog.AttemptQuery{})) == 2 })
	a := e.attempts(sub.ID, hlog.AttemptQuery{})[0]
	if a.Outcome != hlog.OutcomeSucceeded || a.Status != 204 || a.Attempt != 1 || a.Duration <= 0 {
		t.Fatalf("attempt %+v", a)
	}
	ExpandRequestHeaders(&a, "shop", sub.ID)
	for _, h := range a.RequestHeaders {
		if (h[0] == "webhook-signature" || h[0] == "x-herald-signature") && h[1] != elided {
			t.Fatalf("signature recorded: %v", h)
		}
	}
}

func TestRetriesThenDead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Jitter = -1 })
	f := newFlaky(t)
	f.set(func(f *flaky) { f.status = 500 })
	sub := e.subscribe(hlog.Subscription{URL: f.url(), RetrySchedule: durations("100ms", "300ms")})
	e.start()
	seq := e.publish("shop", "order.created")[0]
	testutil.WaitFor(t, 5*time.Second, "dead", func() bool { return len(e.attempts(sub.ID, hlog.AttemptQuery{Outcome: hlog.OutcomeDead})) == 1 })
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3 (1 + len(schedule))", len(reqs))
	}
	for i, want := range durations("100ms", "300ms") {
		gap := reqs[i+1].At.Sub(reqs[i].At)
		if gap < want || gap > want+600*time.Millisecond {
			t.Errorf("gap before attempt %d: %v, want about %v", i+2, gap, want)
		}
		if reqs[i+1].Attempt != i+2 || reqs[i+1].ID != reqs[0].ID {
			t.Errorf("attempt %d: header %d, id %s", i+2, reqs[i+1].Attempt, reqs[i+1].ID)
		}
	}
	if rs := e.retries(sub.ID); len(rs) != 0 {
		t.Fatalf("retry set after death: %+v", rs)
	}
	if s := e.sub(sub.ID); s.Cursor != seq || s.Failures != 3 {
		t.Fatalf("cursor %d failures %d", s.Cursor, s.Failures)
	}
	ops, _, _ := e.db.Read(hlog.HeraldStore, hlog.ReadOptions{})
	if len(ops) != 1 || ops[0].Type != "herald.delivery.dead" || !bytes.Contains(ops[0].Data, []byte(sub.ID)) {
		t.Fatalf("operational events: %+v", ops)
	}
	// No further attempts once dead.
	time.Sleep(400 * time.Millisecond) // observation window: nothing may happen in it
	if n := f.count(); n != 3 {
		t.Fatalf("%d attempts after death", n)
	}
}

func TestResponseHandling(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(f *flaky)
		timeout  time.Duration
		outcome  hlog.Outcome
		disabled string
		errText  string
	}{
		{name: "410 disables", setup: func(f *flaky) { f.status = 410 }, outcome: hlog.OutcomeFailed, disabled: hlog.DisabledGone},
		{name: "webhook-delivery disable", setup: func(f *flaky) { f.status = 400; f.headers = map[string]string{"webhook-delivery": "disable"} },
			outcome: hlog.OutcomeFailed, disabled: hlog.DisabledRequested},
		{name: "abort-message kills the event", setup: func(f *flaky) { f.status = 422; f.headers = map[string]string{"webhook-delivery": "abort-message"} },
			outcome: hlog.OutcomeDead},
		{name: "redirect is a failure", setup: func(f *flaky) { f.status = 302 }, outcome: hlog.OutcomeFailed},
		{name: "timeout", setup: func(f *flaky) { f.latency = 2 * time.Second }, timeout: 200 * time.Millisecond, outcome: hlog.OutcomeFailed, errText: "timeout"},
		{name: "slow body", setup: func(f *flaky) { f.status, f.slowBody = 200, 2*time.Second }, timeout: 200 * time.Millisecond, outcome: hlog.OutcomeFailed, errText: "timeout"},
		{name: "2xx with body", setup: func(f *flaky) { f.status = 200 }, outcome: hlog.OutcomeSucceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			f := newFlaky(t)
			f.set(tc.setup)
			sub := e.subscribe(hlog.Subscription{URL: f.url(), Timeout: tc.timeout, RetrySchedule: durations("1h")})
			e.start()
			e.publish("shop", "order.created")
			testutil.WaitFor(t, 5*time.Second, "first attempt recorded", func() bool { return len(e.attempts(sub.ID, hlog.AttemptQuery{})) == 1 })
			a := e.attempts(sub.ID, hlog.AttemptQuery{})[0]
			if a.Outcome != tc.outcome {
				t.Fatalf("outcome %s, want %s (%+v)", a.Outcome, tc.outcome, a)
			}
			if tc.errText != "" && !strings.Contains(a.Error, tc.errText) {
				t.Fatalf("error %q, want %q", a.Error, tc.errText)
			}
			if tc.disabled != "" {
				testutil.WaitFor(t, 5*time.Second, "disabled", func() bool { return e.sub(sub.ID).Status == hlog.SubDisabled })
				if r := e.sub(sub.ID).DisabledReason; r != tc.disabled {
					t.Fatalf("reason %q, want %q", r, tc.disabled)
				}
				ops, _, _ := e.db.Read(hlog.HeraldStore, hlog.ReadOptions{})
				if len(ops) != 1 || ops[0].Type != "herald.subscription.disabled" {
					t.Fatalf("operational events %+v", ops)
				}
				// The failed event is kept for when the subscription is
				// enabled again.
				if rs := e.retries(sub.ID); len(rs) != 1 {
					t.Fatalf("retry set %+v", rs)
				}
			}
			if tc.outcome == hlog.OutcomeFailed && tc.disabled == "" {
				if rs := e.retries(sub.ID); len(rs) != 1 || rs[0].NextAt < a.At+int64(47*time.Minute) {
					t.Fatalf("retry entry %+v", rs)
				}
			}
		})
	}
}

func TestRetryAfterStretchesTheDelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Jitter = -1 })
	f := newFlaky(t)
	f.set(func(f *flaky) { f.failFirst, f.failStatus, f.retryAfter = 1, 429, "1" })
	e.subscribe(hlog.Subscription{URL: f.url(), RetrySchedule: durations("100ms", "5s")})
	e.start()
	e.publish("shop", "order.created")
	testutil.WaitFor(t, 5*time.Second, "delivered", func() bool { return len(f.succeeded()) == 1 })
	reqs := f.requests()
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second || gap > 2*time.Second {
		t.Fatalf("gap %v: Retry-After 1 must stretch the 100ms delay to 1s", gap)
	}
	// Capped at the next-but-one delay: 300ms, not an hour.
	e2 := newEnv(t, func(c *Config) { c.Jitter = -1 })
	f2 := newFlaky(t)
	f2.set(func(f *flaky) { f.failFirst, f.failStatus, f.retryAfter = 1, 503, "3600" })
	e2.subscribe(hlog.Subscription{URL: f2.url(), RetrySchedule: durations("100ms", "300ms")})
	e2.start()
	e2.publish("shop", "order.created")
	testutil.WaitFor(t, 5*time.Second, "delivered despite Retry-After 3600", func() bool { return len(f2.succeeded()) == 1 })
	reqs = f2.requests()
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 300*time.Millisecond || gap > 1300*time.Millisecond {
		t.Fatalf("gap %v: Retry-After 3600 must be capped at the next-but-one delay, 300ms", gap)
	}
}

func TestCircuitBreakerHoldsNewEventsAndRecovers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BreakerThreshold = 3; c.Jitter = -1 })
	f := newFlaky(t)
	f.set(func(f *flaky) { f.status = 500 })
	sub := e.subscribe(hlog.Subscription{URL: f.url(), MaxInFlight: 2, RetrySchedule: durations("300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms")})
	e.start()
	e.publishN("shop", "order.created", 30)
	testutil.WaitFor(t, 5*time.Second, "breaker open", func() bool { return e.sub(sub.ID).BreakerOpen })
	// While open: one probe per 300ms, one at a time, and new events
	// wait.
	f.set(func(f *flaky) { f.latency, f.maxInFlight = 20*time.Millisecond, 0 })
	before := f.count()
	time.Sleep(time.Second) // observation window
	if d := f.count() - before; d > 5 {
		t.Fatalf("%d requests in 1s with the breaker open: not holding back", d)
	}
	if m := f.peak(); m > 1 {
		t.Fatalf("%d requests in flight with the breaker open", m)
	}
	if s := e.sub(sub.ID); s.Cursor >= 30 {
		t.Fatalf("cursor %d: new events were not held back", s.Cursor)
	}
	f.set(func(f *flaky) { f.status = 0 })
	testutil.WaitFor(t, 10*time.Second, "every event delivered after recovery", func() bool { return len(f.succeeded()) == 30 })
	testutil.WaitFor(t, 5*time.Second, "breaker closed", func() bool { s := e.sub(sub.ID); return !s.BreakerOpen && s.FailingSince == 0 })
	ops, _, _ := e.db.Read(hlog.HeraldStore, hlog.ReadOptions{})
	if len(ops) == 0 || ops[len(ops)-1].Type != "herald.subscription.recovered" {
		t.Fatalf("operational events %+v", ops)
	}
}

func TestDisableAfterContinuousFailure(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BreakerThreshold = 1000 })
	f := newFlaky(t)
	f.set(func(f *flaky) { f.status = 500 })
	sub := e.subscribe(hlog.Subscription{URL: f.url(), DisableAfter: time.Second, RetrySchedule: durations("100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms")})
	e.start()
	start := time.Now()
	e.publish("shop", "order.created")
	testutil.WaitFor(t, 10*time.Second, "disabled", func() bool { return e.sub(sub.ID).Status == hlog.SubDisabled })
	if el := time.Since(start); el < time.Second {
		t.Fatalf("disabled after %v, before disable_after", el)
	}
	if r := e.sub(sub.ID).DisabledReason; r != hlog.DisabledFailing {
		t.Fatalf("reason %q", r)
	}
	// Enabling resumes with the event still pending.
	f.set(func(f *flaky) { f.status = 0 })
	active := hlog.SubActive
	e.patch(sub.ID, hlog.SubPatch{Status: &active})
	testutil.WaitFor(t, 5*time.Second, "delivered after enabling", func() bool { return len(f.succeeded()) == 1 })
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	e.subscribe(hlog.Subscription{URL: f.url(), RateLimit: 20})
	e.start()
	e.publishN("shop", "order.created", 40)
	testutil.WaitFor(t, 10*time.Second, "all delivered", func() bool { return f.count() == 40 })
	reqs := f.requests()
	// A burst of 20, then 20/s: the last of 40 comes no sooner than ~1s
	// after the first.
	if span := reqs[39].At.Sub(reqs[0].At); span < 900*time.Millisecond {
		t.Fatalf("40 deliveries in %v at 20/s", span)
	}
	for i := range reqs {
		j := i
		for j < len(reqs) && reqs[j].At.Sub(reqs[i].At) < time.Second {
			j++
		}
		if j-i > 41 {
			t.Fatalf("%d deliveries within one second", j-i)
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	f.set(func(f *flaky) { f.latency = 30 * time.Millisecond })
	e.subscribe(hlog.Subscription{URL: f.url(), MaxInFlight: 4})
	e.start()
	e.publishN("shop", "order.created", 40)
	testutil.WaitFor(t, 10*time.Second, "all delivered", func() bool { return f.count() == 40 })
	if m := f.peak(); m != 4 {
		t.Fatalf("max %d requests in flight, want exactly 4", m)
	}
}

// TestOrderedVersusUnordered fails event 2 twice. The ordered subscription
// must not send 3.. before 2 succeeded; the unordered one goes on.
func TestOrderedVersusUnordered(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		e := newEnv(t, func(c *Config) { c.Jitter = -1 })
		f := newFlaky(t)
		f.set(func(f *flaky) {
			f.answer = func(r received) int {
				if r.Seq == 2 && f.perID[r.ID] <= 2 {
					return 500
				}
				return 204
			}
		})
		e.subscribe(hlog.Subscription{URL: f.url(), Ordered: ordered, RetrySchedule: durations("150ms", "150ms", "150ms")})
		e.start()
		e.publishN("shop", "order.created", 10)
		testutil.WaitFor(t, 10*time.Second, "all delivered", func() bool { return len(f.succeeded()) == 10 })
		var okAt2 time.Time
		for _, r := range f.requests() {
			if r.Seq == 2 && r.Status == 204 {
				okAt2 = r.At
			}
		}
		laterBefore := 0
		var last uint64
		for _, r := range f.requests() {
			if r.Seq > 2 && r.At.Before(okAt2) {
				laterBefore++
			}
			if ordered && r.Status == 204 {
				if r.Seq < last {
					t.Fatalf("ordered: seq %d after %d", r.Seq, last)
				}
				last = r.Seq
			}
		}
		if ordered && laterBefore > 0 {
			t.Fatalf("ordered: %d later events sent before event 2 succeeded", laterBefore)
		}
		if !ordered && laterBefore < 7 {
			t.Fatalf("unordered: only %d later events went ahead of the failing one", laterBefore)
		}
		if err := e.stop(); !errors.Is(err, ErrStopped) {
			t.Fatalf("stop: %v", err)
		}
	}
}

func TestRedeliverAndReplay(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	sub := e.subscribe(hlog.Subscription{URL: f.url(), RetrySchedule: durations("100ms")})
	e.start()
	seqs := e.publishN("shop", "order.created", 5)
	testutil.WaitFor(t, 5*time.Second, "delivered", func() bool { return f.count() == 5 })
	if err := e.db.Update(func(tx *hlog.Tx) error { _, err := tx.Redeliver(sub.ID, seqs[1], time.Now().UnixNano()); return err }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "redelivered", func() bool {
		if f.count() > 6 {
			for _, r := range f.requests() {
				t.Logf("seq %d attempt %d status %d", r.Seq, r.Attempt, r.Status)
			}
			t.Fatalf("%d requests", f.count())
		}
		return f.count() == 6
	})
	r := f.requests()[5]
	if r.Seq != seqs[1] || r.Attempt != 1 {
		t.Fatalf("redelivery: seq %d attempt %d", r.Seq, r.Attempt)
	}
	testutil.WaitFor(t, 5*time.Second, "manual attempt recorded", func() bool {
		as := e.attempts(sub.ID, hlog.AttemptQuery{})
		return len(as) == 6 && as[5].Manual
	})
	// Replay from seq 3: 3, 4 and 5 again.
	if err := e.db.Update(func(tx *hlog.Tx) error {
		_, err := tx.Replay(sub.ID, seqs[2], false, time.Now().UnixNano())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "replayed", func() bool { return f.count() == 9 })
	replayed := map[uint64]bool{}
	for _, r := range f.requests()[6:] {
		replayed[r.Seq] = true
	}
	if len(replayed) != 3 || !replayed[seqs[2]] || !replayed[seqs[3]] || !replayed[seqs[4]] {
		t.Fatalf("replay sent %v, want seqs %v", replayed, seqs[2:])
	}
	testutil.WaitFor(t, 5*time.Second, "cursor back at the end", func() bool { return e.sub(sub.ID).Cursor == seqs[4] })
	// Replay only dead deliveries.
	f.set(func(f *flaky) { f.status = 500 })
	e.publish("shop", "order.created")
	testutil.WaitFor(t, 5*time.Second, "dead", func() bool { return len(e.attempts(sub.ID, hlog.AttemptQuery{Outcome: hlog.OutcomeDead})) == 1 })
	f.set(func(f *flaky) { f.status = 0 })
	n := f.count()
	if err := e.db.Update(func(tx *hlog.Tx) error { _, err := tx.Replay(sub.ID, 1, true, time.Now().UnixNano()); return err }); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "dead one replayed", func() bool { return f.count() == n+1 })
	if r := f.requests()[n]; r.Seq != seqs[4]+1 || r.Status != 204 {
		t.Fatalf("replayed %+v", r)
	}
}

func TestSecretRotationSignsWithBoth(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	sub := e.subscribe(hlog.Subscription{URL: f.url()})
	e.start()
	const next = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	now := time.Now()
	if err := e.db.Update(func(tx *hlog.Tx) error {
		_, err := tx.RotateSecret(sub.ID, next, now.Add(time.Hour).UnixNano(), now.UnixNano())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "loop restarted with both secrets", func() bool {
		e.publish("shop", "order.created")
		time.Sleep(20 * time.Millisecond) // polling interval
		rs := f.requests()
		return len(rs) > 0 && len(strings.Fields(rs[len(rs)-1].Header.Get("webhook-signature"))) == 2
	})
	r := f.requests()[f.count()-1]
	for _, sec := range []string{testSecret, next} {
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Fatalf("secret %s…: %v", sec[:10], err)
		}
	}
	if got := r.Header.Get("X-Herald-Signature"); got != BodySignature(mustKey(t, next), r.Body) {
		t.Fatalf("X-Herald-Signature is not made with the new secret")
	}
}

func mustKey(t *testing.T, s string) []byte {
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPauseAndResumeFromCursor(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	sub := e.subscribe(hlog.Subscription{URL: f.url()})
	e.start()
	e.publishN("shop", "order.created", 3)
	testutil.WaitFor(t, 5*time.Second, "delivered", func() bool { return f.count() == 3 })
	paused, active := hlog.SubPaused, hlog.SubActive
	e.patch(sub.ID, hlog.SubPatch{Status: &paused})
	// The pause is committed; wait for the dispatcher to have stopped
	// the subscription's worker (it drains what is in flight first), so
	// that a worker of before the pause cannot be what sends next.
	testutil.WaitFor(t, 10*time.Second, "the dispatcher stopped the worker", func() bool {
		r := e.d.running.Load()
		if r == nil {
			return false
		}
		_, ok := (*r)[sub.ID]
		return !ok
	})
	e.publishN("shop", "order.created", 3)
	time.Sleep(200 * time.Millisecond) // observation window: nothing may be sent
	if n := f.count(); n != 3 {
		t.Fatalf("%d deliveries while paused", n)
	}
	e.patch(sub.ID, hlog.SubPatch{Status: &active})
	testutil.WaitFor(t, 5*time.Second, "resumed", func() bool { return f.count() == 6 })
}

// TestStopLosesNothing stops the dispatcher mid-stream with commits
// failing (leadership lost), starts a new one, and checks every event
// arrives with duplicates bounded by what was in flight or uncommitted.
func TestStopLosesNothing(t *testing.T) {
	e := newEnv(t, nil)
	f := newFlaky(t)
	f.set(func(f *flaky) { f.latency = 2 * time.Millisecond })
	sub := e.subscribe(hlog.Subscription{URL: f.url(), MaxInFlight: 8})
	e.start()
	e.publishN("shop", "order.created", 500)
	testutil.WaitFor(t, 10*time.Second, "half delivered", func() bool { return f.count() >= 250 })
	e.com.fail.Store(true)
	// One more event, so there is a result to commit even if the first 500
	// are all done by now: its commit fails, and that alone must stop the
	// dispatcher, with the committer's error as the cause (not
	// ErrStopped, which means cancelled).
	e.publish("shop", "order.created")
	if err := e.wait(10 * time.Second); !errors.Is(err, errNotLeader) || errors.Is(err, ErrStopped) {
		t.Fatalf("Run returned %v after a failed commit, want the commit error (%v)", err, errNotLeader)
	}
	committed := e.sub(sub.ID).Cursor
	e.com.fail.Store(false)
	e.start()
	testutil.WaitFor(t, 10*time.Second, "all delivered", func() bool { return len(f.succeeded()) == 501 })
	testutil.WaitFor(t, 5*time.Second, "cursor at the end", func() bool { return e.sub(sub.ID).Cursor == 501 })
	dups := f.count() - 501
	t.Logf("cursor %d at the stop; %d duplicates", committed, dups)
	if dups > 8+200 {
		t.Fatalf("%d duplicates", dups)
	}
	// A cancelled dispatcher says so.
	if err := e.stop(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Run returned %v when cancelled, want ErrStopped", err)
	}
}

// TestUnopenableSecretHoldsOnlyItsSubscription: a subscription whose
// secret does not open (a node with the wrong master key) waits, and
// delivers once it opens; the other subscriptions deliver meanwhile.
func TestUnopenableSecretHoldsOnlyItsSubscription(t *testing.T) {
	var broken atomic.Value
	broken.Store("")
	e := newEnv(t, func(c *Config) {
		c.Open = func(subID, _, stored string) (string, error) {
			if subID == broken.Load().(string) {
				return "", errors.New("secrets: value does not decrypt")
			}
			return stored, nil
		}
	})
	good, bad := newFlaky(t), newFlaky(t)
	sg := e.subscribe(hlog.Subscription{URL: good.url()})
	sb := e.subscribe(hlog.Subscription{URL: bad.url()})
	broken.Store(sb.ID)
	e.start()
	e.publishN("shop", "order.created", 5)
	testutil.WaitFor(t, 10*time.Second, "the healthy subscription delivers", func() bool { return good.count() == 5 })
	if n := bad.count(); n != 0 {
		t.Fatalf("the subscription whose secret does not open sent %d", n)
	}
	broken.Store("")
	testutil.WaitFor(t, 20*time.Second, "the other delivers once its secret opens", func() bool { return bad.count() == 5 })
	if e.sub(sg.ID).Cursor != 5 {
		t.Fatalf("cursor %d", e.sub(sg.ID).Cursor)
	}
}

// TestRetrySetIsPagedFromTheLog: a worker holds at most retryWindow retry
// entries in memory and loads the rest from the log as those drain;
// every one is delivered in the end, each successful once.
func TestRetrySetIsPagedFromTheLog(t *testing.T) {
	old := retryWindow
	retryWindow = 4
	t.Cleanup(func() { retryWindow = old })
	e := newEnv(t, func(c *Config) { c.BreakerThreshold = 1000; c.Jitter = -1 })
	f := newFlaky(t)
	f.set(func(f *flaky) { f.status = 500 })
	sub := e.subscribe(hlog.Subscription{URL: f.url(), MaxInFlight: 4, RetrySchedule: durations("200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms")})
	e.start()
	e.publishN("shop", "order.created", 25)
	testutil.WaitFor(t, 10*time.Second, "every event waiting to be retried", func() bool {
		return len(e.retries(sub.ID)) == 25 && e.sub(sub.ID).Cursor == 25
	})
	// A new worker loads them from the log, four at a time.
	if err := e.stop(); err != nil && !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	e.start()
	f.set(func(f *flaky) { f.status = 0 })
	testutil.WaitFor(t, 20*time.Second, "every event delivered", func() bool { return len(f.succeeded()) == 25 })
	testutil.WaitFor(t, 10*time.Second, "the retry set empty", func() bool { return len(e.retries(sub.ID)) == 0 })
	counts := map[string]int{}
	for _, r := range f.requests() {
		if r.Status >= 200 && r.Status < 300 {
			counts[r.ID]++
		}
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("%s succeeded %d times", id, n)
		}
	}
}
