package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// DeliverConfig describes one delivery run against a cluster's HTTP API.
// The receiver runs in this process on 127.0.0.1.
type DeliverConfig struct {
	Target        string // the HTTP address (host:port) to create subscriptions and publish on
	Store         string // default "bench-deliver"
	Subscriptions int    // subscriptions on the store, each receiving every event (default 1)
	MaxInFlight   int    // per subscription (default 64)
	Payload       int    // bytes of data per event (default 512)
	// Events is the backlog delivered in throughput mode (default 50,000
	// per subscription divided among them).
	Events int
	// Rate switches to latency mode: events/s published one per request
	// for Duration, measuring publish-ack → received.
	Rate     float64
	Duration time.Duration // latency mode, default 10s
}

// DeliverResult is one delivery run's outcome.
type DeliverResult struct {
	Name          string        `json:"name"`
	Subscriptions int           `json:"subscriptions"`
	MaxInFlight   int           `json:"max_in_flight"`
	Payload       int           `json:"payload"`
	Rate          float64       `json:"rate,omitempty"`
	Events        int           `json:"events"`
	Deliveries    int64         `json:"deliveries"` // requests the receiver got
	Duplicates    int64         `json:"duplicates"`
	Duration      time.Duration `json:"duration_ns"`
	Throughput    float64       `json:"deliveries_per_sec"`
	P50           time.Duration `json:"p50_ns,omitempty"`
	P90           time.Duration `json:"p90_ns,omitempty"`
	P99           time.Duration `json:"p99_ns,omitempty"`
	Max           time.Duration `json:"max_ns,omitempty"`
	// SentP50 and SentP99 measure from the start of the publish request
	// (latency mode): the whole path, commit included.
	SentP50 time.Duration `json:"sent_p50_ns,omitempty"`
	SentP99 time.Duration `json:"sent_p99_ns,omitempty"`
}

func (r DeliverResult) String() string {
	if r.Rate > 0 {
		return fmt.Sprintf("%-14s subs=%d rate=%.0f/s payload=%dB: %d events, %d deliveries; publish-ack -> received p50=%v p90=%v p99=%v max=%v; publish-sent -> received p50=%v p99=%v; duplicates=%d",
			r.Name, r.Subscriptions, r.Rate, r.Payload, r.Events, r.Deliveries,
			r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond),
			r.SentP50.Round(10*time.Microsecond), r.SentP99.Round(10*time.Microsecond), r.Duplicates)
	}
	return fmt.Sprintf("%-14s subs=%d in-flight=%d payload=%dB: %d deliveries in %v = %.0f deliveries/s (all results committed); duplicates=%d",
		r.Name, r.Subscriptions, r.MaxInFlight, r.Payload, r.Deliveries, r.Duration.Round(time.Millisecond), r.Throughput, r.Duplicates)
}

func (c *DeliverConfig) defaults() error {
	if c.Target == "" {
		return errors.New("bench: no target")
	}
	if c.Store == "" {
		c.Store = "bench-deliver"
	}
	if c.Subscriptions <= 0 {
		c.Subscriptions = 1
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.Payload <= 0 {
		c.Payload = 512
	}
	if c.Events <= 0 {
		c.Events = 50000 / c.Subscriptions
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	return nil
}

// receiver is the benchmark's webhook endpoint: it answers 204 and notes
// the first receipt time of every event id.
type receiver struct {
	srv      *http.Server
	ln       net.Listener
	requests atomic.Int64
	mu       sync.Mutex
	first    map[string]time.Time
	changed  chan struct{}
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, first: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		now := time.Now()
		id := req.Header.Get("webhook-id") + "/" + req.Header.Get("Herald-Subscription")
		r.requests.Add(1)
		r.mu.Lock()
		if _, ok := r.first[id]; !ok {
			r.first[id] = now
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.first)
}

func (r *receiver) close() { r.srv.Close() }

// Deliver runs a delivery scenario. Throughput mode publishes the backlog
// to paused subscriptions, enables them, and times until every event has
// reached the receiver for every subscription and every subscription's
// cursor — committed through Raft — is at the end. Latency mode publishes
// single events at Rate and measures publish-ack → first receipt.
func Deliver(ctx context.Context, cfg DeliverConfig) (DeliverResult, error) {
	if err := cfg.defaults(); err != nil {
		return DeliverResult{}, err
	}
	res := DeliverResult{Name: "deliver", Subscriptions: cfg.Subscriptions, MaxInFlight: cfg.MaxInFlight, Payload: cfg.Payload, Rate: cfg.Rate}
	recv, err := startReceiver()
	if err != nil {
		return res, err
	}
	defer recv.close()
	client := NewHTTPClient(64)
	base := "http://" + cfg.Target + "/v1/stores/" + cfg.Store
	paused := cfg.Rate == 0
	var subs []string
	for i := 0; i < cfg.Subscriptions; i++ {
		body, _ := json.Marshal(map[string]any{"url": recv.url(), "max_in_flight": cfg.MaxInFlight, "enabled": !paused,
			"retry_schedule": []string{"100ms", "1s", "5s"}, "description": "herald bench"})
		var out struct {
			ID string `json:"id"`
		}
		if err := callJSON(ctx, client, http.MethodPost, base+"/subscriptions", body, &out); err != nil {
			return res, fmt.Errorf("bench: create subscription: %w", err)
		}
		subs = append(subs, out.ID)
	}
	defer func() {
		for _, id := range subs {
			callJSON(context.Background(), client, http.MethodDelete, base+"/subscriptions/"+id, nil, nil)
		}
	}()
	if cfg.Rate > 0 {
		res.Name = "deliver-latency"
		return deliverLatency(ctx, cfg, client, recv, subs, res)
	}

	// Publish the backlog in batches of 500.
	data := Payload(cfg.Payload)
	const batch = 500
	var last uint64
	published := 0
	for sent := 0; sent < cfg.Events; sent += batch {
		n := max(min(batch, cfg.Events-sent), 2) // a batch body needs two or more
		published += n
		var out struct {
			Events []struct {
				Seq uint64 `json:"seq"`
			} `json:"events"`
		}
		if err := callJSON(ctx, client, http.MethodPost, base+"/events", requestBody(n, data), &out); err != nil {
			return res, fmt.Errorf("bench: publish backlog: %w", err)
		}
		if len(out.Events) > 0 {
			last = out.Events[len(out.Events)-1].Seq
		}
	}
	res.Events = published
	want := res.Events * cfg.Subscriptions
	start := time.Now()
	for _, id := range subs {
		if err := callJSON(ctx, client, http.MethodPost, base+"/subscriptions/"+id+"/enable", nil, nil); err != nil {
			return res, fmt.Errorf("bench: enable: %w", err)
		}
	}
	for recv.distinct() < want {
		select {
		case <-recv.changed:
		case <-ctx.Done():
			return res, fmt.Errorf("bench: %d of %d deliveries arrived: %w", recv.distinct(), want, ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
	// Every result committed: each cursor reached the last seq.
	for _, id := range subs {
		for {
			var s struct {
				Cursor uint64 `json:"cursor"`
			}
			if err := callJSON(ctx, client, http.MethodGet, base+"/subscriptions/"+id, nil, &s); err != nil {
				return res, err
			}
			if s.Cursor >= last {
				break
			}
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("bench: cursor stuck at %d of %d: %w", s.Cursor, last, ctx.Err())
			case <-time.After(2 * time.Millisecond): // polling interval
			}
		}
	}
	res.Duration = time.Since(start)
	res.Deliveries = recv.requests.Load()
	res.Duplicates = res.Deliveries - int64(want)
	res.Throughput = float64(want) / res.Duration.Seconds()
	return res, nil
}

func deliverLatency(ctx context.Context, cfg DeliverConfig, client *http.Client, recv *receiver, subs []string, res DeliverResult) (DeliverResult, error) {
	data := Payload(cfg.Payload)
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	sentHist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	sentAt := map[string]time.Time{}
	const clients = 16
	interval := time.Duration(float64(time.Second) * clients / cfg.Rate)
	var mu sync.Mutex
	acked := map[string]time.Time{}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			next := time.Now().Add(time.Duration(c) * interval / clients)
			for i := 0; ; i++ {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d): // the fixed send schedule
					case <-runCtx.Done():
						return
					}
				}
				if runCtx.Err() != nil {
					return
				}
				next = next.Add(interval)
				id := "lat-" + strconv.Itoa(c) + "-" + strconv.Itoa(i)
				body := []byte(`{"id":"` + id + `","type":"bench/order/created","data":` + string(data) + `}`)
				sent := time.Now()
				if err := post(ctx, client, "http://"+cfg.Target+"/v1/stores/"+cfg.Store+"/events", body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mu.Lock()
				acked[id] = time.Now()
				sentAt[id] = sent
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return res, fmt.Errorf("bench: publish: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		recv.mu.Lock()
		missing := 0
		hist.Reset()
		sentHist.Reset()
		for id, at := range acked {
			for _, sub := range subs {
				got, ok := recv.first[id+"/"+sub]
				if !ok {
					missing++
					continue
				}
				d := got.Sub(at)
				if d < 0 {
					d = 0 // delivered before the ack reached the publisher
				}
				hist.RecordValue(int64(d / time.Microsecond))
				sentHist.RecordValue(int64(got.Sub(sentAt[id]) / time.Microsecond))
			}
		}
		recv.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: %d acked events never delivered", missing)
		}
		select {
		case <-recv.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Events = len(acked)
	res.Deliveries = recv.requests.Load()
	res.Duplicates = res.Deliveries - int64(recv.distinct())
	res.Duration = cfg.Duration
	res.Throughput = float64(res.Deliveries) / cfg.Duration.Seconds()
	us := func(q float64) time.Duration { return time.Duration(hist.ValueAtQuantile(q)) * time.Microsecond }
	res.P50, res.P90, res.P99 = us(50), us(90), us(99)
	res.Max = time.Duration(hist.Max()) * time.Microsecond
	res.SentP50 = time.Duration(sentHist.ValueAtQuantile(50)) * time.Microsecond
	res.SentP99 = time.Duration(sentHist.ValueAtQuantile(99)) * time.Microsecond
	return res, nil
}

// callJSON makes an API call and decodes a 2xx JSON answer into out.
func callJSON(ctx context.Context, client *http.Client, method, url string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
