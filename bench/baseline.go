package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/node/delivery"
)

// baselineSecret signs the bare client's requests.
const baselineSecret = "whsec_YmFzZWxpbmUtYmFzZWxpbmUtYmFzZWxpbmUtYmFz"

// BaselineHTTP measures the machine's ceiling for webhook delivery: a bare
// Go client (keep-alive, clients goroutines) POSTing signed bodies of
// payload bytes to the same receiver, with nothing else in the way.
func BaselineHTTP(ctx context.Context, recv *Receiver, clients, payload int, d time.Duration) (Result, error) {
	key, err := delivery.ParseSecret(baselineSecret)
	if err != nil {
		return Result{}, err
	}
	recv.Secret("baseline", baselineSecret)
	body := []byte(`{"id":"x","store":"bench","seq":1,"type":"bench/order/created","timestamp":"2026-01-01T00:00:00Z","version":"1","data":` + string(Payload(payload)) + `}`)
	client := NewHTTPClient(clients)
	defer client.CloseIdleConnections()
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n, errs atomic.Int64
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; runCtx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, recv.URL(), bytes.NewReader(body))
				delivery.SetHeaders(req.Header, [][]byte{key}, fmt.Sprintf("b%d-%d", c, i), time.Now(), body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(delivery.HeaderSubscription, "baseline")
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode/100 != 2 {
					errs.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				resp.Body.Close()
				n.Add(1)
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start)
	return Result{Name: "baseline-http", Unit: "requests/s", Params: map[string]any{"clients": clients, "payload": payload},
		Requests: n.Load(), Errors: errs.Load(), Duration: el, Throughput: float64(n.Load()) / el.Seconds(),
		CPUPerUnit: perUnit(processCPU()-cpu0, n.Load())}, nil
}

// BaselineFsync measures how many 4 KiB append+fdatasync rounds the disk
// under dir sustains in d: the floor every durable write sits on.
func BaselineFsync(dir string, d time.Duration) (Result, error) {
	f, err := os.CreateTemp(dir, "fsync-baseline-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return Result{}, err
		}
		if err := f.Sync(); err != nil {
			return Result{}, err
		}
		n++
	}
	el := time.Since(start)
	return Result{Name: "baseline-fsync", Unit: "fsyncs/s", Params: map[string]any{"dir": filepath.Clean(dir), "bytes": 4096},
		Requests: int64(n), Duration: el, Throughput: float64(n) / el.Seconds()}, nil
}
