package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// batcher is the group commit: publish requests queue here and are packed
// into one Raft entry, so one quorum fsync covers many requests. A batch is
// flushed at once when nothing is in flight (a lone client pays no wait);
// while earlier entries are being committed it waits up to maxWait for more
// requests, or until it is full.
type batcher struct {
	store     *raftstore.Store
	log       *slog.Logger
	maxWait   time.Duration
	maxEvents int
	maxBytes  int

	in      chan *pending
	slots   chan struct{} // one token per entry being committed
	timer   *time.Timer
	stop    chan struct{}
	exited  chan struct{} // closed when close has answered everything it will
	wg      sync.WaitGroup
	flushes sync.WaitGroup // entries being committed

	// committed, when set, is told of every entry committed: its events
	// (for the metrics) and, per request, the new ones by store.
	committed func(entryEvents int, newByStore map[string]int)
}

type pending struct {
	req  raftstore.AppendRequest
	size int
	done chan pendingResult
}

type pendingResult struct {
	events []hlog.Appended
	err    error
}

func newBatcher(s *raftstore.Store, logger *slog.Logger, wait time.Duration, maxEvents, maxBytes, maxInFlight int) *batcher {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &batcher{
		store: s, log: logger, maxWait: wait, maxEvents: maxEvents, maxBytes: maxBytes,
		in: make(chan *pending, 4096), slots: make(chan struct{}, maxInFlight), timer: t,
		stop: make(chan struct{}), exited: make(chan struct{}),
	}
}

func (b *batcher) start() {
	b.wg.Add(1)
	go b.run()
}

// close stops the loop and waits for the entries in flight to be
// answered (Raft is still running); queued requests fail with
// ErrUnavailable.
func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
	b.flushes.Wait()
	close(b.exited)
}

// submit queues a request and waits for its outcome.
func (b *batcher) submit(ctx context.Context, req raftstore.AppendRequest) ([]hlog.Appended, error) {
	size := 0
	for _, e := range req.Events {
		size += len(e.Data) + len(e.ID) + len(e.Type) + 32
	}
	p := &pending{req: req, size: size, done: make(chan pendingResult, 1)}
	select {
	case b.in <- p:
	case <-b.stop:
		return nil, errShuttingDown
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued the request will be committed or fail. A caller that
	// stops waiting (its deadline passed: a stalled disk, a lost quorum)
	// gets a timeout; the outcome is then unknown and a retry with the same
	// ids resolves it. A request that slipped into the queue as the loop
	// stopped is answered by nobody: exited says so.
	select {
	case r := <-p.done:
		return r.events, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: no outcome in time (it may still be stored: retry with the same id)", ctx.Err())
	case <-b.exited:
		select {
		case r := <-p.done:
			return r.events, r.err
		default:
			return nil, errShuttingDown
		}
	}
}

func (b *batcher) run() {
	defer b.wg.Done()
	for {
		var first *pending
		select {
		case first = <-b.in:
		case <-b.stop:
			b.drain()
			return
		}
		batch := []*pending{first}
		events, bytes := len(first.req.Events), first.size
		add := func(p *pending) {
			batch = append(batch, p)
			events += len(p.req.Events)
			bytes += p.size
		}
		full := func() bool { return events >= b.maxEvents || bytes >= b.maxBytes }
		// Take whatever is already queued.
	gather:
		for !full() {
			select {
			case p := <-b.in:
				add(p)
			default:
				break gather
			}
		}
		// Wait for a free slot (at most maxInFlight entries are being
		// committed at once), collecting requests meanwhile: this is where
		// batches grow under load. Then linger up to maxWait if entries
		// are still in flight, so a burst lands in one entry.
		acquired := false
		for !acquired {
			select {
			case b.slots <- struct{}{}:
				acquired = true
			case p := <-b.in:
				add(p)
			case <-b.stop:
				for _, p := range batch {
					p.done <- pendingResult{err: errShuttingDown}
				}
				b.drain()
				return
			}
		}
		if !full() && len(b.slots) > 1 && b.maxWait > 0 {
			b.timer.Reset(b.maxWait)
		linger:
			for !full() {
				select {
				case p := <-b.in:
					add(p)
				case <-b.timer.C:
					break linger
				}
			}
			if !b.timer.Stop() {
				select {
				case <-b.timer.C:
				default:
				}
			}
		}
		b.flush(batch)
	}
}

func (b *batcher) flush(batch []*pending) {
	reqs := make([]raftstore.AppendRequest, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	f := b.store.ApplyAppend(reqs)
	b.flushes.Add(1)
	go func() {
		defer b.flushes.Done()
		res, err := f.Wait()
		<-b.slots
		if err == nil && b.committed != nil {
			total, fresh := 0, map[string]int{}
			for i, r := range res {
				for _, e := range r.Events {
					total++
					if !e.Duplicate {
						fresh[reqs[i].Store]++
					}
				}
			}
			b.committed(total, fresh)
		}
		for i, p := range batch {
			switch {
			case err != nil:
				p.done <- pendingResult{err: err}
			case i >= len(res):
				p.done <- pendingResult{err: raftstore.ErrBadCommand}
			default:
				p.done <- pendingResult{events: res[i].Events, err: res[i].Err}
			}
		}
	}()
}

func (b *batcher) drain() {
	for {
		select {
		case p := <-b.in:
			p.done <- pendingResult{err: errShuttingDown}
		default:
			return
		}
	}
}
