package delivery

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// flaky is a webhook receiver whose answers the test controls: a failure
// rate, a latency, fixed statuses (410, 429/503 with Retry-After, 3xx),
// slow bodies, control headers, or any function of the request. It keeps
// every request.
type flaky struct {
	srv *httptest.Server
	mu  sync.Mutex
	// behaviour
	failRate   float64
	rng        *rand.Rand
	status     int // fixed status (0 = 204 unless failing)
	failStatus int
	failFirst  int // fail the first n attempts of every event
	latency    time.Duration
	slowBody   time.Duration
	retryAfter string
	headers    map[string]string
	answer     func(r received) int // overrides everything when set
	// record
	inFlight    int
	maxInFlight int
	reqs        []received
	perID       map[string]int
	changed     chan struct{}
}

type received struct {
	ID      string
	Attempt int
	Seq     uint64
	Sub     string
	Header  http.Header
	Body    []byte
	At      time.Time
	Status  int
}

func newFlaky(t testing.TB) *flaky {
	f := &flaky{rng: rand.New(rand.NewPCG(1, 2)), failStatus: 500, perID: map[string]int{}, changed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flaky) url() string { return f.srv.URL + "/hook" }

func (f *flaky) set(fn func(f *flaky)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *flaky) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/elsewhere" {
		w.WriteHeader(http.StatusOK) // where redirects point: must never be reached
		return
	}
	body, _ := io.ReadAll(r.Body)
	rec := received{ID: r.Header.Get("webhook-id"), Header: r.Header.Clone(), Body: body, At: time.Now(), Sub: r.Header.Get("Herald-Subscription")}
	rec.Attempt, _ = strconv.Atoi(r.Header.Get("Herald-Attempt"))
	rec.Seq, _ = strconv.ParseUint(r.Header.Get("Herald-Seq"), 10, 64)
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	f.perID[rec.ID]++
	status := http.StatusNoContent
	switch {
	case f.answer != nil:
		status = f.answer(rec)
	case f.status != 0:
		status = f.status
	case f.failFirst > 0 && f.perID[rec.ID] <= f.failFirst:
		status = f.failStatus
	case f.failRate > 0 && f.rng.Float64() < f.failRate:
		status = f.failStatus
	}
	latency, slow, ra := f.latency, f.slowBody, f.retryAfter
	for k, v := range f.headers {
		w.Header().Set(k, v)
	}
	rec.Status = status
	f.reqs = append(f.reqs, rec)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "/elsewhere")
	}
	w.WriteHeader(status)
	if slow > 0 {
		for i := 0; i < 10; i++ {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(slow / 10):
			case <-r.Context().Done():
				return
			}
		}
	}
}

// peak returns the most requests that were in flight at once.
func (f *flaky) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

func (f *flaky) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// succeeded returns the ids answered 2xx at least once.
func (f *flaky) succeeded() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := map[string]bool{}
	for _, r := range f.reqs {
		if r.Status >= 200 && r.Status < 300 {
			ok[r.ID] = true
		}
	}
	return ok
}
