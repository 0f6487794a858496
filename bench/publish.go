package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herald-io/herald/api"
)

// PublishConfig describes one publish run.
type PublishConfig struct {
	Targets  []string      // HTTP addresses (host:port); client i uses Targets[i%len]
	APIKey   string        // sent as a bearer token ("" for a cluster without auth)
	Store    string        // default "bench"
	Clients  int           // concurrent clients, default 64
	Batch    int           // events per request, default 1 (a single-event body)
	Payload  int           // bytes of data per event, default 512
	Duration time.Duration // default 10s
	// Rate is the offered load in events/s across all clients; 0 sends as
	// fast as the clients can.
	Rate float64
	// Progress, when set, counts events sent and acknowledged.
	Progress *Progress
	// OnAck, when set, makes single-event requests carry client ids and is
	// called with each acknowledged id, when it was due and when it was
	// acknowledged.
	OnAck func(id string, due, acked time.Time)
}

// Result is one scenario's outcome. Throughput is events/s for publish
// scenarios and deliveries/s for delivery scenarios (Unit says which);
// P50-Max is the scenario's main latency (publish: request due → ack;
// deliver-latency: publish ack → first receipt).
type Result struct {
	Name       string         `json:"name"`
	Params     map[string]any `json:"parameters"`
	Requests   int64          `json:"requests,omitempty"`
	Events     int64          `json:"events"`
	Deliveries int64          `json:"deliveries,omitempty"`
	Errors     int64          `json:"errors"`
	Duplicates int64          `json:"duplicates"`
	Lost       int64          `json:"lost"`
	Duration   time.Duration  `json:"duration_ns"`
	Throughput float64        `json:"throughput"`
	Unit       string         `json:"unit"`
	P50        time.Duration  `json:"p50_ns"`
	P90        time.Duration  `json:"p90_ns"`
	P99        time.Duration  `json:"p99_ns"`
	Max        time.Duration  `json:"max_ns"`
	// E2E* (latency scenario): publish ack → first receipt.
	E2EP50 time.Duration `json:"e2e_p50_ns,omitempty"`
	E2EP90 time.Duration `json:"e2e_p90_ns,omitempty"`
	E2EP99 time.Duration `json:"e2e_p99_ns,omitempty"`
	E2EMax time.Duration `json:"e2e_max_ns,omitempty"`
	// Failover: kill → first acknowledged publish, → first delivery.
	PublishGap  time.Duration `json:"publish_gap_ns,omitempty"`
	DeliveryGap time.Duration `json:"delivery_gap_ns,omitempty"`
	// CPUPerUnit is the CPU time this process used during the measured
	// window over the units counted (events, deliveries or requests):
	// with the in-process cluster the nodes, the receiver and the load
	// generator together, with a target only the last two.
	CPUPerUnit time.Duration `json:"cpu_per_unit_ns,omitempty"`
	// Ratio is Throughput over the matching baseline (0 when none ran).
	Ratio      float64 `json:"ratio_to_baseline,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

func (r Result) String() string {
	b := fmt.Sprintf("%-16s %8.0f %s", r.Name, r.Throughput, r.Unit)
	if r.Ratio > 0 {
		b += fmt.Sprintf(" (%.2f x baseline)", r.Ratio)
	}
	if r.P99 > 0 {
		b += fmt.Sprintf("; p50=%v p90=%v p99=%v max=%v", rd(r.P50), rd(r.P90), rd(r.P99), rd(r.Max))
	}
	if r.E2EP99 > 0 || r.E2EP50 > 0 {
		b += fmt.Sprintf("; ack->received p50=%v p90=%v p99=%v max=%v", rd(r.E2EP50), rd(r.E2EP90), rd(r.E2EP99), rd(r.E2EMax))
	}
	if r.PublishGap > 0 || r.DeliveryGap > 0 {
		b += fmt.Sprintf("; gap: publish %v, delivery %v", r.PublishGap.Round(time.Millisecond), r.DeliveryGap.Round(time.Millisecond))
	}
	if r.CPUPerUnit > 0 {
		b += fmt.Sprintf("; cpu %v per %s", rd(r.CPUPerUnit), singular(r.Unit))
	}
	b += fmt.Sprintf("; events=%d", r.Events)
	if r.Deliveries > 0 {
		b += fmt.Sprintf(" deliveries=%d", r.Deliveries)
	}
	return b + fmt.Sprintf(" errors=%d lost=%d duplicates=%d", r.Errors, r.Lost, r.Duplicates)
}

// singular names one unit of a throughput ("deliveries/s": "delivery").
func singular(unit string) string {
	u := strings.TrimSuffix(unit, "/s")
	if v, ok := strings.CutSuffix(u, "ies"); ok {
		return v + "y"
	}
	return strings.TrimSuffix(u, "s")
}

func rd(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// NewHTTPClient returns a client tuned for many keep-alive connections to
// a few hosts: the bare webhook client of the baseline. Herald's API is
// called through api.Client (newClient).
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			MaxConnsPerHost:     conns * 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Payload returns a JSON string value of exactly n bytes (n >= 2).
func Payload(n int) []byte {
	if n < 2 {
		n = 2
	}
	b := bytes.Repeat([]byte("x"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

func (c *PublishConfig) defaults() error {
	if len(c.Targets) == 0 {
		return errors.New("bench: no targets")
	}
	if c.Store == "" {
		c.Store = "bench"
	}
	if c.Clients <= 0 {
		c.Clients = 64
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Payload <= 0 {
		c.Payload = 512
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	return nil
}

// benchType is the type of every published event.
const benchType = "bench/order/created"

// newClient is the API client of a benchmark: one attempt per request
// (a failure is counted, not retried), and publish answers without the
// events' data, which the benchmark does not need back (decoding it would
// cost the client about four times the CPU of the rest of a request, on
// the cores the cluster runs on).
func newClient(target, apiKey string) (*api.Client, error) {
	return api.NewClient(api.Config{Addresses: []string{target}, APIKey: apiKey, UserAgent: "herald-bench", MaxRetries: -1, PublishWithoutData: true})
}

// newEvents returns n events of the benchmark's type carrying data.
func newEvents(n int, data []byte) []api.NewEvent {
	evs := make([]api.NewEvent, n)
	for i := range evs {
		evs[i] = api.NewEvent{Type: benchType, Data: data}
	}
	return evs
}

// Publish runs one publish scenario and returns its result. Every
// acknowledged (2xx) request counts its events; anything else is an error.
func Publish(ctx context.Context, cfg PublishConfig) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	name := "publish"
	if cfg.Batch > 1 {
		name = "publish-batch"
	}
	if cfg.Rate > 0 {
		name = "latency"
	}
	res := Result{Name: name, Unit: "events/s", Params: map[string]any{"clients": cfg.Clients, "batch": cfg.Batch, "payload": cfg.Payload}}
	if cfg.Rate > 0 {
		res.Params["rate"] = cfg.Rate
	}
	data := Payload(cfg.Payload)
	clients := make([]*api.Client, len(cfg.Targets))
	for i, t := range cfg.Targets {
		c, err := newClient(t, cfg.APIKey)
		if err != nil {
			return res, err
		}
		defer c.CloseIdleConnections()
		clients[i] = c
	}

	// runCtx ends the run: no request starts after it. Requests already
	// sent finish under ctx, so every acknowledged event is counted.
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	// With a fixed rate, a scheduler hands out due times; latency counts
	// from the due time, so a stalled server is charged for the requests
	// it kept waiting (no coordinated omission).
	var due chan time.Time
	if cfg.Rate > 0 {
		due = make(chan time.Time, cfg.Clients)
		interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / cfg.Rate)
		go func() {
			defer close(due)
			start := time.Now()
			for i := 0; ; i++ {
				at := start.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					select {
					case <-time.After(d):
					case <-runCtx.Done():
						return
					}
				}
				select {
				case due <- at:
				case <-runCtx.Done():
					return
				}
			}
		}()
	}

	var (
		requests, events, errs atomic.Int64
		firstErr               atomic.Value
		mu                     sync.Mutex
		hist                   = hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
		wg                     sync.WaitGroup
	)
	start, cpu0 := time.Now(), processCPU()
	for c := 0; c < cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := clients[c%len(clients)]
			batch := newEvents(cfg.Batch, data)
			local := hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
			defer func() {
				mu.Lock()
				hist.Merge(local)
				mu.Unlock()
			}()
			for i := 0; ; i++ {
				var sent time.Time
				if due != nil {
					at, ok := <-due
					if !ok {
						return
					}
					sent = at
				} else {
					if runCtx.Err() != nil {
						return
					}
					sent = time.Now()
				}
				if cfg.Progress != nil {
					cfg.Progress.Sent.Add(int64(cfg.Batch))
				}
				var id string
				var err error
				if cfg.Batch == 1 {
					ev := batch[0]
					if cfg.OnAck != nil {
						id = "b" + strconv.Itoa(c) + "-" + strconv.Itoa(i)
						ev.ID = id
					}
					_, err = client.Publish(ctx, cfg.Store, ev)
				} else {
					_, err = client.PublishBatch(ctx, cfg.Store, batch)
				}
				if ctx.Err() != nil {
					return // interrupted
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				acked := time.Now()
				events.Add(int64(cfg.Batch))
				if cfg.Progress != nil {
					cfg.Progress.Acked.Add(int64(cfg.Batch))
				}
				if cfg.OnAck != nil {
					cfg.OnAck(id, sent, acked)
				}
				local.RecordValue(int64(acked.Sub(sent) / time.Microsecond))
			}
		}(c)
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.Requests, res.Events, res.Errors = requests.Load(), events.Load(), errs.Load()
	res.CPUPerUnit = perUnit(processCPU()-cpu0, res.Events)
	res.Throughput = float64(res.Events) / res.Duration.Seconds()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	res.P50, res.P90, res.P99, res.Max = us(hist.ValueAtQuantile(50)), us(hist.ValueAtQuantile(90)), us(hist.ValueAtQuantile(99)), us(hist.Max())
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	return res, nil
}

// StoreLastSeq asks a node for a store's last seq (linearizable), to check
// that what a run counted as acknowledged is what the cluster holds.
func StoreLastSeq(ctx context.Context, target, apiKey, store string) (uint64, error) {
	c, err := newClient(target, apiKey)
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	si, err := c.Store(ctx, store, &api.QueryOptions{Consistency: api.ConsistencyLinearizable})
	if api.IsCode(err, api.CodeNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return si.LastSeq, nil
}
