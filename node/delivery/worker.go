package delivery

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	hlog "github.com/herald-io/herald/log"
	"golang.org/x/time/rate"
)

// A worker is one subscription's delivery loop. All of its state belongs
// to the loop goroutine; requests run in their own goroutines and report
// back on results.
type worker struct {
	d        *Dispatcher
	c        *committer
	sub      hlog.Subscription
	gen      uint64
	patterns []hlog.Pattern
	limiter  *rate.Limiter
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	quit   chan struct{} // closed by drain
	done   chan struct{}

	results  chan sendResult
	inflight int
	// newQ holds the seqs of new (first-attempt) deliveries in flight or
	// finished, in dispatch (= seq) order; the cursor stays below the
	// oldest unfinished one.
	newQ    []uint64
	newDone map[uint64]bool
	scanned uint64       // last seq read from the log for new deliveries
	buf     []hlog.Event // read ahead, not yet sent (all > the cursor)
	cursor  uint64       // last cursor sent to the committer
	retries map[uint64]*retryItem
	due     retryHeap // retries not in flight, by due time
	// retryNext is the seq of the last retry entry loaded from the log;
	// retryMore that the log may hold more after it (retryWindow).
	retryNext uint64
	retryMore bool
	disabled  bool

	failures     int
	failingSince int64
	breakerOpen  bool
	nextProbe    time.Time
	keys         []keyAt
}

type keyAt struct {
	key     []byte
	expires int64 // unix ns; 0 = current
}

type retryItem struct {
	hlog.RetryEntry
	index int // in due; -1 when not queued (also while it is being sent)
}

type sendResult struct {
	a     hlog.Attempt
	resp  Response
	err   error
	isNew bool
}

// readAhead is how many matching events a worker reads from the log at
// once.
const readAhead = 256

func startWorker(ctx context.Context, d *Dispatcher, c *committer, sub hlog.Subscription) (*worker, error) {
	patterns, err := hlog.ParsePatterns(sub.Types)
	if err != nil {
		return nil, err
	}
	w := &worker{
		d: d, c: c, sub: sub, gen: sub.Gen, patterns: patterns,
		log:     d.log.With("subscription", sub.ID, "store", sub.Store),
		done:    make(chan struct{}),
		quit:    make(chan struct{}),
		results: make(chan sendResult, sub.MaxInFlight),
		newDone: map[uint64]bool{},
		scanned: sub.Cursor,
		cursor:  sub.Cursor,
		retries: map[uint64]*retryItem{},

		failures:     sub.Failures,
		failingSince: sub.FailingSince,
		breakerOpen:  sub.BreakerOpen,
	}
	if err := OpenHeaders(&w.sub, d.cfg.Open); err != nil {
		return nil, err
	}
	for _, sec := range sub.Secrets {
		k, err := secretKey(&sub, sec.Key, d.cfg.Open)
		if err != nil {
			return nil, err
		}
		w.keys = append(w.keys, keyAt{key: k, expires: sec.ExpiresAt})
	}
	if sub.RateLimit > 0 {
		burst := int(sub.RateLimit)
		if burst < 1 {
			burst = 1
		}
		w.limiter = rate.NewLimiter(rate.Limit(sub.RateLimit), burst)
	}
	if err := w.loadRetries(); err != nil {
		return nil, err
	}
	if w.breakerOpen {
		w.nextProbe = time.Now()
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.log.Debug("delivery loop starts", "cursor", sub.Cursor, "retries", len(w.retries), "more_retries", w.retryMore)
	go w.run()
	return w, nil
}

// retryWindow bounds the retry entries a worker holds in memory (a
// receiver that fails for days leaves one per event); the rest wait in
// the log and are loaded in seq order as these drain.
var retryWindow = 10000

// loadRetries fills the in-memory retry set from the log, after the last
// entry loaded, up to retryWindow.
func (w *worker) loadRetries() error {
	want := retryWindow - len(w.retries)
	if want <= 0 {
		return nil
	}
	entries, err := w.d.cfg.Source.Retries(w.sub.ID, w.retryNext, want)
	if err != nil {
		return fmt.Errorf("delivery: load retry set of %s: %w", w.sub.ID, err)
	}
	for _, e := range entries {
		if _, ok := w.retries[e.Seq]; ok {
			continue // failed since it started: already held
		}
		it := &retryItem{RetryEntry: e, index: -1}
		w.retries[e.Seq] = it
		heap.Push(&w.due, it)
	}
	if len(entries) > 0 {
		w.retryNext = entries[len(entries)-1].Seq
	}
	w.retryMore = len(entries) == want
	return nil
}

// retriesPending reports whether any retry waits, held or in the log.
func (w *worker) retriesPending() bool { return len(w.retries) > 0 || w.retryMore }

// stop cancels the loop and its requests and waits until it has reported
// every finished attempt to the committer.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// drain stops the loop gracefully, for a configuration change: nothing new
// is sent, requests in flight may finish (and their results are
// recorded) for up to grace, then the rest are cancelled. Cancelled ones
// are sent again by the next loop.
func (w *worker) drain(grace time.Duration) {
	close(w.quit)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		w.log.Warn("requests still in flight after the drain grace; cancelling them", "grace", grace)
		w.stop()
	}
}

func (w *worker) stopped() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *worker) run() {
	defer close(w.done)
	defer func() {
		// Requests still running are cancelled; collect them so every
		// attempt that did finish is recorded.
		w.cancel()
		for w.inflight > 0 {
			w.handle(<-w.results)
		}
	}()
	quit := w.quit
	for {
		if w.ctx.Err() != nil || w.disabled || (quit == nil && w.inflight == 0) {
			return
		}
		changed := w.d.cfg.Source.StoreChanged(w.sub.Store)
		now := time.Now()
		var wake time.Time
		caughtUp := false
		if w.retryMore && len(w.retries) < retryWindow/2 {
			if err := w.loadRetries(); err != nil {
				w.log.Error("loading retries failed; retrying", "error", err)
			}
		}
		if quit != nil {
			wake = w.dispatchRetries(now)
			var newWake time.Time
			var err error
			caughtUp, newWake, err = w.dispatchNew(now)
			if err != nil {
				w.log.Error("reading the log failed; retrying", "error", err)
				newWake = now.Add(time.Second)
			}
			if wake.IsZero() || (!newWake.IsZero() && newWake.Before(wake)) {
				wake = newWake
			}
		}
		var timer *time.Timer
		var timerC <-chan time.Time
		if !wake.IsZero() {
			timer = time.NewTimer(time.Until(wake))
			timerC = timer.C
		}
		var changedC <-chan struct{}
		if caughtUp {
			changedC = changed
		}
		select {
		case r := <-w.results:
			w.handle(r)
			for more := true; more; {
				select {
				case r := <-w.results:
					w.handle(r)
				default:
					more = false
				}
			}
		case <-timerC:
		case <-changedC:
		case <-quit:
			quit = nil // draining: only collect what is in flight
		case <-w.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// limit is how many requests may be in flight now: one probe while the
// breaker is open.
func (w *worker) limit() int {
	if w.breakerOpen {
		return 1
	}
	return w.sub.MaxInFlight
}

// allow takes a rate-limit token; when none is left it returns when to try
// again.
func (w *worker) allow(now time.Time) (bool, time.Time) {
	if w.limiter == nil {
		return true, time.Time{}
	}
	r := w.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, now.Add(d)
	}
	return true, time.Time{}
}

// dispatchRetries sends due retries and returns when the next one is due.
func (w *worker) dispatchRetries(now time.Time) time.Time {
	if w.disabled {
		return time.Time{}
	}
	if w.breakerOpen && (w.inflight > 0 || now.Before(w.nextProbe)) {
		// One probe at a time, spaced by the probe delay.
		if w.inflight > 0 {
			return time.Time{}
		}
		return w.nextProbe
	}
	if w.sub.Ordered {
		return w.dispatchOrderedRetry(now)
	}
	for w.due.Len() > 0 && w.inflight < w.limit() {
		it := w.due[0]
		if it.NextAt > now.UnixNano() {
			return time.Unix(0, it.NextAt)
		}
		ok, retryAt := w.allow(now)
		if !ok {
			return retryAt
		}
		heap.Pop(&w.due)
		w.sendRetry(it)
	}
	return time.Time{}
}

// dispatchOrderedRetry sends the retry with the lowest seq when it is due:
// an ordered subscription sends nothing else meanwhile.
func (w *worker) dispatchOrderedRetry(now time.Time) time.Time {
	if w.inflight > 0 || len(w.retries) == 0 {
		return time.Time{}
	}
	var head *retryItem
	for _, it := range w.retries {
		if head == nil || it.Seq < head.Seq {
			head = it
		}
	}
	if head.NextAt > now.UnixNano() {
		return time.Unix(0, head.NextAt)
	}
	ok, retryAt := w.allow(now)
	if !ok {
		return retryAt
	}
	if head.index >= 0 {
		heap.Remove(&w.due, head.index)
	}
	w.sendRetry(head)
	return time.Time{}
}

func (w *worker) sendRetry(it *retryItem) {
	ev, err := w.d.cfg.Source.GetSeq(w.sub.Store, it.Seq)
	if err != nil {
		// The event cannot be read (removed from the log): record a failed
		// attempt, so the delivery follows its schedule to dead and is on
		// record rather than dropped silently.
		a := hlog.Attempt{EventID: it.EventID, Seq: it.Seq, Attempt: it.Attempts + 1, At: time.Now().UnixNano(),
			Manual: it.Manual, Error: "event not readable from the log: " + err.Error()}
		w.inflight++
		w.results <- sendResult{a: a}
		return
	}
	w.send(ev, it.Attempts+1, it.Manual, false)
}

// dispatchNew sends new events from the log while slots are free. It
// reports whether it has read everything there is (so the loop may wait
// for appends) and when to try again if it was held back.
func (w *worker) dispatchNew(now time.Time) (caughtUp bool, wake time.Time, err error) {
	if w.disabled {
		return false, time.Time{}, nil
	}
	for {
		free := w.limit() - w.inflight
		if w.sub.Ordered && (w.retriesPending() || w.inflight > 0) {
			return false, time.Time{}, nil
		}
		if w.breakerOpen {
			// Only a probe, and only when no retry is waiting to be one.
			if w.retriesPending() || w.inflight > 0 {
				return false, time.Time{}, nil
			}
			if now.Before(w.nextProbe) {
				return false, w.nextProbe, nil
			}
		}
		if free <= 0 {
			return false, time.Time{}, nil
		}
		if w.limiter != nil {
			if tokens := int(w.limiter.TokensAt(now)); tokens < free {
				free = tokens
			}
			if free <= 0 {
				_, retryAt := w.allow(now)
				return false, retryAt, nil
			}
		}
		if len(w.buf) == 0 {
			evs, next, err := w.d.cfg.Source.Read(w.sub.Store, hlog.ReadOptions{After: w.scanned, Limit: readAhead, Types: w.patterns})
			var ce *hlog.CompactedError
			if errors.As(err, &ce) {
				// Retention never removes what a subscription still needs;
				// this is a cursor set below the store's start by hand.
				w.log.Warn("events before the store's first seq are gone; continuing from it", "first_seq", ce.FirstSeq)
				w.scanned = ce.FirstSeq - 1
				continue
			}
			if err != nil {
				return false, time.Time{}, err
			}
			if next <= w.scanned {
				return true, time.Time{}, nil
			}
			w.buf, w.scanned = evs, next
		}
		for free > 0 && len(w.buf) > 0 {
			ev := w.buf[0]
			if _, pending := w.retries[ev.Seq]; pending {
				w.buf = w.buf[1:] // already queued (a replay moved the cursor back over it)
				continue
			}
			if ok, retryAt := w.allow(now); !ok {
				w.sendCursor()
				return false, retryAt, nil
			}
			w.buf = w.buf[1:]
			w.newQ = append(w.newQ, ev.Seq)
			w.send(ev, 1, false, true)
			free--
		}
		w.sendCursor()
		if w.breakerOpen {
			return false, time.Time{}, nil
		}
	}
}

// send starts one request.
func (w *worker) send(ev hlog.Event, attempt int, manual, isNew bool) {
	w.inflight++
	now := time.Now()
	keys := make([][]byte, 0, len(w.keys))
	for _, k := range w.keys {
		if k.expires == 0 || k.expires > now.UnixNano() {
			keys = append(keys, k.key)
		}
	}
	sub := &w.sub
	go func() {
		body := ev.AppendEnvelope(make([]byte, 0, 256+len(ev.Data)))
		a, resp, err := w.d.cfg.Sender.Send(w.ctx, sub, keys, &ev, body, attempt)
		a.Manual = manual
		w.results <- sendResult{a: a, resp: resp, err: err, isNew: isNew}
	}()
}

// lowWater is the cursor: below the oldest unfinished new delivery, or the
// scan position when none is unfinished.
func (w *worker) lowWater() uint64 {
	for len(w.newQ) > 0 && w.newDone[w.newQ[0]] {
		delete(w.newDone, w.newQ[0])
		w.newQ = w.newQ[1:]
	}
	if len(w.newQ) > 0 {
		return w.newQ[0] - 1
	}
	if len(w.buf) > 0 {
		return w.buf[0].Seq - 1
	}
	return w.scanned
}

// sendCursor reports a cursor move that no attempt carries (skipped
// events).
func (w *worker) sendCursor() {
	if c := w.lowWater(); c > w.cursor {
		w.cursor = c
		w.c.send(result{sd: hlog.SubDelivery{ID: w.sub.ID, Epoch: w.sub.Epoch, Cursor: c}})
	}
}

// handle settles one finished request.
func (w *worker) handle(r sendResult) {
	w.inflight--
	a := r.a
	it := w.retries[a.Seq]
	if r.isNew {
		it = nil
	}
	if r.err != nil {
		// Cancelled: nothing is known. A new event stays above the cursor
		// and a retry stays in the set; the next loop sends it again.
		return
	}
	now := time.Now()
	out := result{sd: hlog.SubDelivery{ID: w.sub.ID, Epoch: w.sub.Epoch}}
	success := a.Error == "" && Success(a.Status)
	if success {
		a.Outcome = hlog.OutcomeSucceeded
		if w.breakerOpen && w.failingSince != 0 {
			out.events = append(out.events, w.opEvent(now, "herald.subscription.recovered", map[string]any{
				"failing_since": time.Unix(0, w.failingSince).UTC(), "failures": w.failures,
			}))
		}
		w.failures, w.failingSince, w.breakerOpen = 0, 0, false
		if it != nil {
			delete(w.retries, a.Seq)
		}
	} else {
		w.failures++
		if w.failingSince == 0 {
			w.failingSince = a.At
		}
		if w.failures >= w.d.cfg.BreakerThreshold && !w.breakerOpen {
			w.breakerOpen = true
			w.log.Warn("circuit breaker open: sending one probe at a time", "failures", w.failures)
		}
		if w.breakerOpen {
			w.nextProbe = now.Add(w.probeDelay())
		}
		switch {
		case a.Status == http.StatusGone:
			out.sd.Disable = hlog.DisabledGone
		case r.resp.Control == "disable":
			out.sd.Disable = hlog.DisabledRequested
		case now.UnixNano()-w.failingSince >= int64(w.sub.DisableAfter):
			out.sd.Disable = hlog.DisabledFailing
		}
		if a.Attempt >= 1+len(w.sub.RetrySchedule) || r.resp.Control == "abort-message" {
			a.Outcome = hlog.OutcomeDead
			if it != nil {
				delete(w.retries, a.Seq)
			}
			reason := "retry schedule exhausted"
			if r.resp.Control == "abort-message" {
				reason = "receiver answered webhook-delivery: abort-message"
			}
			// Once per delivery: a dead delivery leaves the retry set.
			w.log.Warn("delivery dead", "event_id", a.EventID, "seq", a.Seq, "attempts", a.Attempt,
				"reason", reason, "last_error", errorText(&a))
			out.events = append(out.events, w.opEvent(now, "herald.delivery.dead", map[string]any{
				"event_id": a.EventID, "seq": a.Seq, "attempts": a.Attempt, "last_error": errorText(&a),
			}))
		} else {
			a.Outcome = hlog.OutcomeFailed
			a.NextAt = now.Add(w.retryDelay(a.Attempt, r.resp.RetryAfter)).UnixNano()
			if it == nil {
				it = w.retries[a.Seq] // a redelivery queued meanwhile
			}
			if it == nil {
				it = &retryItem{RetryEntry: hlog.RetryEntry{Seq: a.Seq, EventID: a.EventID}, index: -1}
				w.retries[a.Seq] = it
			}
			it.Attempts, it.NextAt, it.LastError, it.Manual = a.Attempt, a.NextAt, errorText(&a), a.Manual
			switch {
			case it.index >= 0:
				heap.Fix(&w.due, it.index)
			case !w.sub.Ordered:
				heap.Push(&w.due, it)
			}
		}
		if out.sd.Disable != "" && !w.disabled {
			w.disabled = true
			// Once: the loop stops here, and no new one starts before the
			// disable is committed (see Dispatcher.Run).
			w.log.Warn("subscription disabled", "reason", out.sd.Disable, "event_id", a.EventID, "seq", a.Seq,
				"attempt", a.Attempt, "last_error", errorText(&a))
			out.events = append(out.events, w.opEvent(now, "herald.subscription.disabled", map[string]any{
				"reason": out.sd.Disable, "url": w.sub.URL,
			}))
		}
	}
	if r.isNew {
		w.newDone[a.Seq] = true
	}
	if obs := w.d.cfg.OnAttempt; obs != nil {
		outcome := string(a.Outcome)
		if strings.HasPrefix(a.Error, "blocked_destination") {
			outcome = "blocked"
		}
		obs(w.sub.Store, outcome, time.Duration(a.Duration))
	}
	out.sd.Attempts = []hlog.Attempt{a}
	out.sd.State = &hlog.DeliveryState{FailingSince: w.failingSince, Failures: w.failures, BreakerOpen: w.breakerOpen}
	if c := w.lowWater(); c > w.cursor {
		w.cursor = c
		out.sd.Cursor = c
	}
	if w.sub.Store == hlog.HeraldStore {
		out.events = nil // no operational events about operational events
	}
	w.c.send(out)
}

// retryDelay is the jittered delay before the attempt after attempt n,
// stretched to a receiver's Retry-After up to the next-but-one delay.
func (w *worker) retryDelay(n int, retryAfter time.Duration) time.Duration {
	sched := w.sub.RetrySchedule
	base := sched[n-1]
	d := base
	if j := w.d.cfg.Jitter; j > 0 {
		d = time.Duration(float64(base) * (1 + j*(2*rand.Float64()-1)))
	}
	if retryAfter > d {
		ceiling := sched[min(n, len(sched)-1)]
		d = min(retryAfter, max(ceiling, d))
	}
	return max(d, hlog.MinRetryDelay)
}

// probeDelay is how long an open breaker waits before probing with a new
// event: the first retry delay, at most a minute.
func (w *worker) probeDelay() time.Duration {
	d := time.Minute
	if len(w.sub.RetrySchedule) > 0 {
		d = min(w.sub.RetrySchedule[0], time.Minute)
	}
	return d
}

func errorText(a *hlog.Attempt) string {
	if a.Error != "" {
		return a.Error
	}
	return fmt.Sprintf("HTTP %d", a.Status)
}

// opEvent builds an operational event for HeraldStore.
func (w *worker) opEvent(now time.Time, typ string, fields map[string]any) hlog.NewEvent {
	fields["subscription_id"] = w.sub.ID
	fields["store"] = w.sub.Store
	data, err := json.Marshal(fields)
	if err != nil {
		data = []byte(`{}`)
	}
	id := ""
	if w.d.cfg.NewID != nil {
		id = w.d.cfg.NewID(now)
	} else {
		id = fmt.Sprintf("evt_%d", now.UnixNano())
	}
	return hlog.NewEvent{ID: id, Type: typ, Version: "1", Timestamp: now.UnixNano(), Data: data}
}

// retryHeap orders retry entries by due time, then seq.
type retryHeap []*retryItem

func (h retryHeap) Len() int { return len(h) }
func (h retryHeap) Less(i, j int) bool {
	return h[i].NextAt < h[j].NextAt || h[i].NextAt == h[j].NextAt && h[i].Seq < h[j].Seq
}
func (h retryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *retryHeap) Push(x any) {
	it := x.(*retryItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *retryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}
