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
	b += fmt.Sprintf("; events=%d", r.Events)
	if r.Deliveries > 0 {
		b += fmt.Sprintf(" deliveries=%d", r.Deliveries)
	}
	return b + fmt.Sprintf(" errors=%d lost=%d duplicates=%d", r.Errors, r.Lost, r.Duplicates)
}

func rd(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
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

// eventBody is a single event with a client id.
func eventBody(id string, data []byte) []byte {
	return []byte(`{"id":"` + id + `","type":"bench/order/created","data":` + string(data) + `}`)
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
	res := Result{Name: name, Unit: "events/s", Params: map[string]any{"clients": cfg.Clients, "batch": cfg.Batch, "payload": cfg.Payload}}
	if cfg.Rate > 0 {
		res.Params["rate"] = cfg.Rate
	}
	data := Payload(cfg.Payload)
	body := requestBody(cfg.Batch, data)
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
				reqBody, id := body, ""
				if cfg.OnAck != nil {
					id = "b" + strconv.Itoa(c) + "-" + strconv.Itoa(i)
					reqBody = eventBody(id, data)
				}
				if cfg.Progress != nil {
					cfg.Progress.Sent.Add(int64(cfg.Batch))
				}
				err := post(ctx, client, url, reqBody)
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
