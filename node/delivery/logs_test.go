package delivery

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// recordingEnv is an env whose dispatcher logs WARN and above to a
// recorder, through a logger with the attributes node.go gives it.
func recordingEnv(t *testing.T, tweak func(*Config)) (*env, *testutil.LogRecorder) {
	rec := testutil.NewLogRecorder(slog.LevelWarn)
	e := newEnv(t, func(c *Config) {
		c.Logger = rec.Logger().With("subsystem", "delivery", "node", "n1")
		c.Jitter = -1
		if tweak != nil {
			tweak(c)
		}
	})
	return e, rec
}

func checkAttrs(t *testing.T, r testutil.LogRecord, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.Str(k); got != v {
			t.Errorf("%q: %s = %q, want %q (attrs %v)", r.Message, k, got, v, r.Attrs)
		}
	}
}

// TestDeadDeliveryIsLoggedOnce: a delivery that dies is logged once, at
// WARN, with its store, subscription, event and why (the retries before it
// are not warnings).
func TestDeadDeliveryIsLoggedOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(f *flaky)
		attempts int
		reason   string
		lastErr  string
	}{
		{"retries exhausted", func(f *flaky) { f.status = 500 }, 3, "retry schedule exhausted", "HTTP 500"},
		{"abort-message", func(f *flaky) { f.status = 422; f.headers = map[string]string{"webhook-delivery": "abort-message"} },
			1, "receiver answered webhook-delivery: abort-message", "HTTP 422"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, rec := recordingEnv(t, nil)
			f := newFlaky(t)
			f.set(tc.setup)
			sub := e.subscribe(hlog.Subscription{URL: f.url(), RetrySchedule: durations("100ms", "100ms")})
			e.start()
			seq := e.publish("shop", "order.created")[0]
			testutil.WaitFor(t, 10*time.Second, "dead", func() bool {
				return len(e.attempts(sub.ID, hlog.AttemptQuery{Outcome: hlog.OutcomeDead})) == 1
			})
			ev, err := e.db.GetSeq("shop", seq)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.stop(); !errors.Is(err, ErrStopped) {
				t.Fatalf("stop: %v", err)
			}
			if n := f.count(); n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			rs := rec.Records()
			if len(rs) != 1 || rs[0].Message != "delivery dead" || rs[0].Level != slog.LevelWarn {
				t.Fatalf("warnings %+v, want one \"delivery dead\"", rs)
			}
			checkAttrs(t, rs[0], map[string]string{
				"subsystem": "delivery", "node": "n1", "store": "shop", "subscription": sub.ID,
				"event_id": ev.ID, "seq": fmt.Sprint(seq), "attempts": fmt.Sprint(tc.attempts),
				"reason": tc.reason, "last_error": tc.lastErr,
			})
		})
	}
}

// TestDisabledSubscriptionIsLoggedOnce: a 410 disables the subscription;
// that is logged once, at WARN, with the store, subscription, reason and
// the answer that caused it.
func TestDisabledSubscriptionIsLoggedOnce(t *testing.T) {
	e, rec := recordingEnv(t, nil)
	f := newFlaky(t)
	f.set(func(f *flaky) { f.status = 410 })
	sub := e.subscribe(hlog.Subscription{URL: f.url() + "?token=s3cret", MaxInFlight: 4, RetrySchedule: durations("1h")})
	e.start()
	seqs := e.publishN("shop", "order.created", 3)
	testutil.WaitFor(t, 10*time.Second, "disabled", func() bool { return e.sub(sub.ID).Status == hlog.SubDisabled })
	if err := e.stop(); !errors.Is(err, ErrStopped) {
		t.Fatalf("stop: %v", err)
	}
	rs := rec.Records()
	if len(rs) != 1 || rs[0].Message != "subscription disabled" || rs[0].Level != slog.LevelWarn {
		t.Fatalf("warnings %+v, want one \"subscription disabled\" (up to %d requests were in flight)", rs, 4)
	}
	r := rs[0]
	checkAttrs(t, r, map[string]string{
		"subsystem": "delivery", "node": "n1", "store": "shop", "subscription": sub.ID,
		"reason": hlog.DisabledGone, "last_error": "HTTP 410", "attempt": "1",
	})
	found := false
	for _, seq := range seqs {
		ev, err := e.db.GetSeq("shop", seq)
		if err != nil {
			t.Fatal(err)
		}
		found = found || r.Str("event_id") == ev.ID && r.Str("seq") == fmt.Sprint(seq)
	}
	if !found {
		t.Errorf("event_id %q seq %q is not one of the events sent", r.Str("event_id"), r.Str("seq"))
	}
	for _, a := range r.Attrs {
		if s := a.Value.String(); strings.Contains(s, "s3cret") || strings.Contains(s, testSecret) {
			t.Errorf("a secret in the log: %s=%s", a.Key, s)
		}
	}
}
