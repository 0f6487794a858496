package main

import (
	"bytes"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// peakHeap keeps the heap profile of the moment the heap held the most
// live objects: a profile at the end of a benchmark run would show a
// cluster already closed. It samples every interval until stop.
type peakHeap struct {
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	peak     uint64
	profile  bytes.Buffer
	err      error
}

func startPeakHeap(interval time.Duration) *peakHeap {
	p := &peakHeap{interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func (p *peakHeap) run() {
	defer close(p.done)
	sample := []metrics.Sample{{Name: heapObjects}}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			continue
		}
		if v := sample[0].Value.Uint64(); v > p.peak {
			p.peak = v
			p.profile.Reset()
			// The profile is as of the last garbage collection; at a new
			// peak that is at most one GC cycle behind.
			p.err = pprof.Lookup("heap").WriteTo(&p.profile, 0)
		}
	}
}

// writeTo stops sampling and writes the peak's profile to path.
func (p *peakHeap) writeTo(path string) (peak uint64, err error) {
	close(p.stop)
	<-p.done
	if p.err != nil {
		return p.peak, p.err
	}
	return p.peak, os.WriteFile(path, p.profile.Bytes(), 0o644)
}
