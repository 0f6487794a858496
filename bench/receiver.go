package bench

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/node/delivery"
)

// ReceiverConfig shapes the benchmark's webhook endpoint.
type ReceiverConfig struct {
	// Latency is added before every answer (a slow receiver).
	Latency time.Duration
	// FailRate is the fraction of requests answered 503 (a flaky
	// receiver); Herald retries them.
	FailRate float64
	// Drop answers 204 to the first Drop requests without recording
	// them: a delivery lost on the way, which the accounting must report.
	Drop int
}

// Receiver is the benchmark's webhook endpoint on 127.0.0.1. It verifies
// every request's signature against the secrets it was told (Secret) and
// records the first receipt of every (subscription, event) pair.
type Receiver struct {
	cfg ReceiverConfig
	srv *http.Server
	ln  net.Listener

	requests   atomic.Int64 // every request
	failed     atomic.Int64 // answered 503 on purpose
	badSig     atomic.Int64 // signature did not verify
	dropped    atomic.Int64
	mu         sync.Mutex
	secrets    map[string]string    // subscription id -> secret
	first      map[string]time.Time // subscription/event id -> first 2xx receipt
	delivered  atomic.Int64         // distinct pairs answered 2xx
	duplicates atomic.Int64         // 2xx receipts of a pair already received
	changed    chan struct{}
	rng        *rand.Rand
}

// StartReceiver listens on 127.0.0.1 and serves until Close.
func StartReceiver(cfg ReceiverConfig) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, ln: ln, secrets: map[string]string{}, first: map[string]time.Time{},
		changed: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(7, 11))}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// URL is where subscriptions should point.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/hook" }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// Secret registers the signing secret of a subscription; requests of an
// unregistered subscription count as bad signatures.
func (r *Receiver) Secret(subID, secret string) {
	r.mu.Lock()
	r.secrets[subID] = secret
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	now := time.Now()
	r.requests.Add(1)
	sub := req.Header.Get(delivery.HeaderSubscription)
	r.mu.Lock()
	secret := r.secrets[sub]
	fail := r.cfg.FailRate > 0 && r.rng.Float64() < r.cfg.FailRate
	r.mu.Unlock()
	if r.cfg.Latency > 0 {
		select {
		case <-time.After(r.cfg.Latency):
		case <-req.Context().Done():
			return
		}
	}
	if secret == "" || delivery.Verify(secret, req.Header, body, 0) != nil {
		r.badSig.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if fail {
		r.failed.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.cfg.Drop > 0 && r.dropped.Add(1) <= int64(r.cfg.Drop) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	key := sub + "/" + req.Header.Get(delivery.HeaderID)
	r.mu.Lock()
	if _, seen := r.first[key]; seen {
		r.duplicates.Add(1)
	} else {
		r.first[key] = now
		r.delivered.Add(1)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// Delivered is the number of distinct (subscription, event) pairs received.
func (r *Receiver) Delivered() int64 { return r.delivered.Load() }

// FirstReceipt returns when the event reached the subscription first.
func (r *Receiver) FirstReceipt(subID, eventID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.first[subID+"/"+eventID]
	return t, ok
}

// ReceiverStats are the receiver's counters.
type ReceiverStats struct {
	Requests, Delivered, Duplicates, Failed, BadSignatures int64
}

// Stats returns the counters so far.
func (r *Receiver) Stats() ReceiverStats {
	return ReceiverStats{Requests: r.requests.Load(), Delivered: r.delivered.Load(), Duplicates: r.duplicates.Load(),
		Failed: r.failed.Load(), BadSignatures: r.badSig.Load()}
}
