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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// PublishConfig describes one publish run.
type PublishConfig struct {
	Targets  []string      // HTTP addresses (host:port); client i uses Targets[i%len]
	Store    string        // default "bench"
	Clients  int           // concurrent clients, default 64
	Batch    int           // events per request, default 1 (a single-event body)
	Payload  int           // bytes of data per event, default 512
	Duration time.Duration // default 10s
	// Rate is the offered load in events/s across all clients; 0 sends as
	// fast as the clients can.
	Rate float64
}

// Result is one run's outcome.
type Result struct {
	Name       string        `json:"name"`
	Clients    int           `json:"clients"`
	Batch      int           `json:"batch"`
	Payload    int           `json:"payload"`
	Rate       float64       `json:"rate,omitempty"`
	Requests   int64         `json:"requests"`
	Events     int64         `json:"events"`
	Errors     int64         `json:"errors"`
	Duration   time.Duration `json:"duration_ns"`
	Throughput float64       `json:"events_per_sec"`
	P50        time.Duration `json:"p50_ns"`
	P90        time.Duration `json:"p90_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
	FirstError string        `json:"first_error,omitempty"`
}

func (r Result) String() string {
	rate := ""
	if r.Rate > 0 {
		rate = fmt.Sprintf(" rate=%.0f/s", r.Rate)
	}
	return fmt.Sprintf("%-14s clients=%d batch=%d payload=%dB%s: %d events in %v = %.0f events/s; latency p50=%v p90=%v p99=%v max=%v; errors=%d",
		r.Name, r.Clients, r.Batch, r.Payload, rate, r.Events, r.Duration.Round(time.Millisecond), r.Throughput,
		r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Errors)
}

// NewHTTPClient returns a client tuned for many keep-alive connections to
// a few hosts.
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

// requestBody builds one request body: a single event or a batch.
func requestBody(batch int, data []byte) []byte {
	ev := func(b *bytes.Buffer) {
		b.WriteString(`{"type":"bench/order/created","data":`)
		b.Write(data)
		b.WriteByte('}')
	}
	var b bytes.Buffer
	if batch == 1 {
		ev(&b)
		return b.Bytes()
	}
	b.WriteString(`{"events":[`)
	for i := 0; i < batch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		ev(&b)
	}
	b.WriteString(`]}`)
	return b.Bytes()
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
	res := Result{Name: name, Clients: cfg.Clients, Batch: cfg.Batch, Payload: cfg.Payload, Rate: cfg.Rate}
	body := requestBody(cfg.Batch, Payload(cfg.Payload))
	client := NewHTTPClient(cfg.Clients)
	defer client.CloseIdleConnections()

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
	start := time.Now()
	for c := 0; c < cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			url := "http://" + cfg.Targets[c%len(cfg.Targets)] + "/v1/stores/" + cfg.Store + "/events"
			local := hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
			defer func() {
				mu.Lock()
				hist.Merge(local)
				mu.Unlock()
			}()
			for {
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
				err := post(ctx, client, url, body)
				if ctx.Err() != nil {
					return // interrupted
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				events.Add(int64(cfg.Batch))
				local.RecordValue(int64(time.Since(sent) / time.Microsecond))
			}
		}(c)
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.Requests, res.Events, res.Errors = requests.Load(), events.Load(), errs.Load()
	res.Throughput = float64(res.Events) / res.Duration.Seconds()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	res.P50, res.P90, res.P99, res.Max = us(hist.ValueAtQuantile(50)), us(hist.ValueAtQuantile(90)), us(hist.ValueAtQuantile(99)), us(hist.Max())
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	return res, nil
}

func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// StoreLastSeq asks a node for a store's last seq (linearizable), to check
// that what a run counted as acknowledged is what the cluster holds.
func StoreLastSeq(ctx context.Context, target, store string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/v1/stores/"+store+"?consistency=linearizable", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	var v struct {
		LastSeq uint64 `json:"last_seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, err
	}
	return v.LastSeq, nil
}
