package bench

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herald-io/herald/api"
)

// ScaleConfig describes the scale scenario: a store is filled in stages
// up to Events, and at each checkpoint publish throughput, read latency,
// the snapshots Raft took meanwhile and the data dir's size are measured,
// so that a cost that grows with the log shows as a trend across the rows.
type ScaleConfig struct {
	Target, APIKey string
	Store          string // default "bench-scale"
	// Checkpoints are the log sizes measured at, ascending (default
	// 100,000, 300,000 and 1,000,000).
	Checkpoints []int
	Payload     int           // default 512
	Window      time.Duration // each measurement's length (default 3s)
	// DataDir, when set (the in-process cluster's first node), is
	// measured after each stage: its size over the stored payload bytes.
	DataDir string
	// Snapshot, when set (the in-process cluster's first node), is called
	// once after each stage's measurements, with no load running: its
	// time (raft's snapshot and the log truncation after it) is the
	// stage's quiet_snapshot_ns.
	Snapshot func() error
	Progress *Progress
}

// Scale runs the scale scenario and returns one result per checkpoint,
// named scale-N: Throughput is publish events/s (batches of 100 from 16
// clients), P50/P99 the latency of reading 100 events at a random
// position, and Params the snapshots taken during the stage (count and
// mean duration, from herald_snapshot_duration_seconds) and the data
// dir's size.
func Scale(ctx context.Context, cfg ScaleConfig) ([]Result, error) {
	if cfg.Store == "" {
		cfg.Store = "bench-scale"
	}
	if len(cfg.Checkpoints) == 0 {
		cfg.Checkpoints = []int{100_000, 300_000, 1_000_000}
	}
	if cfg.Payload <= 0 {
		cfg.Payload = 512
	}
	if cfg.Window <= 0 {
		cfg.Window = 3 * time.Second
	}
	c, err := newClient(cfg.Target, cfg.APIKey)
	if err != nil {
		return nil, err
	}
	data := Payload(cfg.Payload)
	var out []Result
	for _, n := range cfg.Checkpoints {
		snapN0, snapS0, err := SnapshotStats(ctx, cfg.Target, cfg.APIKey)
		if err != nil {
			return out, err
		}
		if err := fill(ctx, c, cfg.Store, n, data, cfg.Progress); err != nil {
			return out, err
		}
		pub, err := Publish(ctx, PublishConfig{Targets: []string{cfg.Target}, APIKey: cfg.APIKey, Store: cfg.Store, Clients: 16, Batch: 100,
			Payload: cfg.Payload, Duration: cfg.Window, Progress: cfg.Progress})
		if err != nil {
			return out, err
		}
		last, err := StoreLastSeq(ctx, cfg.Target, cfg.APIKey, cfg.Store)
		if err != nil {
			return out, err
		}
		reads, err := readLatency(ctx, c, cfg.Store, last, cfg.Window)
		if err != nil {
			return out, err
		}
		snapN1, snapS1, err := SnapshotStats(ctx, cfg.Target, cfg.APIKey)
		if err != nil {
			return out, err
		}
		r := Result{Name: fmt.Sprintf("scale-%s", short(n)), Unit: "events/s", Events: int64(last), Throughput: pub.Throughput,
			Duration: pub.Duration, Errors: pub.Errors, P50: time.Duration(reads.ValueAtQuantile(50)), P90: time.Duration(reads.ValueAtQuantile(90)),
			P99: time.Duration(reads.ValueAtQuantile(99)), Max: time.Duration(reads.Max()),
			Params: map[string]any{"events_in_log": last, "publish_p99_ns": pub.P99, "reads": reads.TotalCount(), "snapshots": snapN1 - snapN0}}
		if k := snapN1 - snapN0; k > 0 {
			r.Params["snapshot_mean_ns"] = int64((snapS1 - snapS0) / k * 1e9)
		}
		if cfg.Snapshot != nil {
			start := time.Now()
			if err := cfg.Snapshot(); err != nil {
				return out, fmt.Errorf("scale: snapshot at %d events: %w", last, err)
			}
			r.Params["quiet_snapshot_ns"] = int64(time.Since(start))
		}
		if cfg.DataDir != "" {
			size := dirSize(cfg.DataDir)
			r.Params["data_dir_bytes"] = size
			r.Params["data_dir_per_payload_byte"] = float64(size) / float64(last*uint64(cfg.Payload))
			if st, err := os.Stat(filepath.Join(cfg.DataDir, "events.db")); err == nil {
				r.Params["events_db_bytes"] = st.Size()
				r.Params["events_db_per_payload_byte"] = float64(st.Size()) / float64(last*uint64(cfg.Payload))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ScaleLine is a scale result as one line: the figures that must not grow
// with the log.
func ScaleLine(r Result) string {
	b := fmt.Sprintf("%-12s log %9v events: publish %6.0f events/s (p99 %v); read 100 at random p50 %v p99 %v", r.Name, r.Params["events_in_log"],
		r.Throughput, rd(time.Duration(toInt(r.Params["publish_p99_ns"]))), rd(r.P50), rd(r.P99))
	if k := toInt(r.Params["snapshots"]); k > 0 {
		b += fmt.Sprintf("; %d snapshots, mean %v", k, rd(time.Duration(toInt(r.Params["snapshot_mean_ns"]))))
	} else {
		b += "; no snapshot in this stage"
	}
	if v, ok := r.Params["quiet_snapshot_ns"]; ok {
		b += fmt.Sprintf("; one more at rest %v", rd(time.Duration(toInt(v))))
	}
	if v, ok := r.Params["data_dir_bytes"]; ok {
		b += fmt.Sprintf("; node 1's data dir %.1f MB, %.2f x the payload", float64(toInt(v))/1e6, r.Params["data_dir_per_payload_byte"])
		if e, ok := r.Params["events_db_bytes"]; ok {
			b += fmt.Sprintf(" (events.db %.1f MB, %.2f x)", float64(toInt(e))/1e6, r.Params["events_db_per_payload_byte"])
		}
	}
	return b
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case int:
		return int64(x)
	case time.Duration:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// fill publishes 500-event batches from 8 clients until the store holds
// at least n events.
func fill(ctx context.Context, c *api.Client, store string, n int, data []byte, p *Progress) error {
	var have atomic.Int64
	if st, err := c.Store(ctx, store, nil); err == nil {
		have.Store(int64(st.LastSeq))
	}
	evs := newEvents(500, data)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for have.Load() < int64(n) && ctx.Err() == nil {
				res, err := c.PublishBatch(ctx, store, evs)
				if err != nil {
					errc <- fmt.Errorf("bench: scale fill: %w", err)
					return
				}
				if k := len(res.Events); k > 0 {
					have.Store(max(have.Load(), int64(res.Events[k-1].Seq)))
				}
				if p != nil {
					p.Sent.Add(int64(len(evs)))
					p.Acked.Add(int64(len(evs)))
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

// readLatency reads 100 events at random positions for d, one request
// at a time, and returns the latencies (ns).
func readLatency(ctx context.Context, c *api.Client, store string, last uint64, d time.Duration) (*hdrhistogram.Histogram, error) {
	h := hdrhistogram.New(1, int64(30*time.Second), 3)
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		after := uint64(rand.Int64N(int64(max(last, 101) - 100)))
		t0 := time.Now()
		page, err := c.Events(ctx, store, api.ReadOptions{After: after, Limit: 100})
		if err != nil {
			return h, fmt.Errorf("bench: scale read: %w", err)
		}
		if len(page.Events) == 0 {
			return h, fmt.Errorf("bench: scale read after %d: no events", after)
		}
		h.RecordValue(int64(time.Since(t0)))
	}
	return h, nil
}

// SnapshotStats reads the count and sum of herald_snapshot_duration_seconds
// from the /metrics of target (host:port).
func SnapshotStats(ctx context.Context, target, apiKey string) (count, sum float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("bench: metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []struct {
			name string
			to   *float64
		}{{"herald_snapshot_duration_seconds_count", &count}, {"herald_snapshot_duration_seconds_sum", &sum}} {
			if rest, ok := strings.CutPrefix(line, m.name+" "); ok {
				*m.to, _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
			}
		}
	}
	return count, sum, sc.Err()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}
