package delivery

import (
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// TestEnableSendsWaitingRetriesAtOnce: a failed delivery waits in the retry
// set for an hour; after pause and enable (or after Herald disabled the
// subscription on a 410, and it is enabled) it is sent again at once, not
// an hour later. The dispatcher's new loop picks the moved due time up
// from the log.
func TestEnableSendsWaitingRetriesAtOnce(t *testing.T) {
	for _, how := range []string{"paused", "disabled"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Jitter = -1 })
			f := newFlaky(t)
			f.set(func(f *flaky) {
				f.status = 500
				if how == "disabled" {
					f.status = 410
				}
			})
			sub := e.subscribe(hlog.Subscription{URL: f.url(), RetrySchedule: durations("1h")})
			e.start()
			seq := e.publish("shop", "order.created")[0]
			testutil.WaitFor(t, 5*time.Second, "the first attempt failed and waits in the retry set", func() bool {
				rs := e.retries(sub.ID)
				return len(rs) == 1 && rs[0].Seq == seq && rs[0].NextAt > time.Now().Add(50*time.Minute).UnixNano()
			})
			paused, active := hlog.SubPaused, hlog.SubActive
			if how == "paused" {
				e.patch(sub.ID, hlog.SubPatch{Status: &paused})
			} else {
				testutil.WaitFor(t, 5*time.Second, "disabled", func() bool { return e.sub(sub.ID).Status == hlog.SubDisabled })
			}
			f.set(func(f *flaky) { f.status = 0 })
			enabled := time.Now()
			e.patch(sub.ID, hlog.SubPatch{Status: &active})
			testutil.WaitFor(t, 5*time.Second, "the waiting retry delivered after enabling", func() bool { return len(f.succeeded()) == 1 })
			reqs := f.requests()
			if len(reqs) != 2 || reqs[1].Seq != seq || reqs[1].Attempt != 2 {
				t.Fatalf("requests %+v, want the first attempt and its retry", reqs)
			}
			if d := reqs[1].At.Sub(enabled); d > 3*time.Second {
				t.Fatalf("retry sent %v after enabling, want at once", d)
			}
			testutil.WaitFor(t, 5*time.Second, "retry set empty", func() bool { return len(e.retries(sub.ID)) == 0 })
		})
	}
}
