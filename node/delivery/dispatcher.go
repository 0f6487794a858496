package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// Source is what the dispatcher reads: the leader's local, fully applied
// event log (*log.DB implements it).
type Source interface {
	Subscription(id string) (hlog.Subscription, error)
	Subscriptions(store string) ([]hlog.Subscription, error)
	Retries(id string, after uint64, limit int) ([]hlog.RetryEntry, error)
	Read(store string, o hlog.ReadOptions) ([]hlog.Event, uint64, error)
	GetSeq(store string, seq uint64) (hlog.Event, error)
	// Changed is closed when events are appended; SubsChanged when a
	// subscription is created, changed through the API, disabled or
	// deleted.
	Changed() <-chan struct{}
	StoreChanged(store string) <-chan struct{}
	SubsChanged() <-chan struct{}
}

// Committer commits a batch of results through Raft and returns once it is
// applied on this node. An error means this node cannot commit (it lost
// leadership, or is shutting down): the dispatcher stops.
type Committer interface {
	CommitDeliveries(b *hlog.DeliveryBatch) error
}

// ErrStopped is the cause Run returns when its context was cancelled.
var ErrStopped = errors.New("delivery: dispatcher stopped")

// Config configures a Dispatcher.
type Config struct {
	Source    Source
	Committer Committer
	Sender    *Sender
	Logger    *slog.Logger
	// NewID returns a new event id for operational events.
	NewID func(time.Time) string
	// FlushInterval is how long results wait to be committed together
	// (default 10ms); FlushMax the most results in one entry (default
	// 1000).
	FlushInterval time.Duration
	FlushMax      int
	// Keep is how many attempts per subscription the delivery log keeps
	// (default log.DefaultKeepAttempts).
	Keep int
	// BreakerThreshold is the number of consecutive failed attempts that
	// opens a subscription's circuit breaker (default 5).
	BreakerThreshold int
	// Jitter is the fraction by which retry delays vary either way
	// (default 0.2; negative for none).
	Jitter float64
	// Open returns the plaintext of a stored sealed value of
	// subscription subID: a signing secret (secrets.SecretField) or a
	// sensitive header value (secrets.HeaderField); node seals
	// them (internal/secrets). Nil takes values as stored.
	Open Opener
	// OnAttempt, if set, is told of every attempt settled: its store, its
	// outcome (succeeded, failed, dead, or blocked for a refused address)
	// and how long it took (metrics).
	OnAttempt func(store, outcome string, d time.Duration)
}

// Opener returns the plaintext of a value stored sealed.
type Opener func(subID, field, stored string) (string, error)

// Dispatcher delivers events to subscriptions. It runs on the leader only:
// Run from gaining leadership until losing it.
type Dispatcher struct {
	cfg Config
	log *slog.Logger
	// running is, after each reconciliation pass of Run, the
	// subscriptions with a worker and their Gen (tests wait on it).
	running atomic.Pointer[map[string]uint64]
}

// New returns a dispatcher.
func New(cfg Config) *Dispatcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 10 * time.Millisecond
	}
	if cfg.FlushMax <= 0 {
		cfg.FlushMax = 1000
	}
	if cfg.Open == nil {
		cfg.Open = func(_, _, stored string) (string, error) { return stored, nil }
	}
	if cfg.Keep <= 0 {
		cfg.Keep = hlog.DefaultKeepAttempts
	}
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = 5
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.2
	} else if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.Sender == nil {
		cfg.Sender = NewSender(SenderConfig{})
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger}
}

// Run delivers until ctx is cancelled or a commit fails, and returns why.
// The caller must have made sure the local log holds every committed entry
// (a Raft barrier) before calling it. On return every subscription loop
// has stopped and the results of finished attempts were committed if this
// node still could.
func (d *Dispatcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := newCommitter(d, cancel)
	go c.run()
	workers := map[string]*worker{}
	defer func() {
		for _, w := range workers {
			w.stop()
		}
		c.close()
	}()
	d.log.Info("dispatcher started")
	failed := map[string]uint64{} // subscription -> the Gen whose start failed (logged once)
	for {
		retry := false
		changed := d.cfg.Source.SubsChanged()
		subs, err := d.cfg.Source.Subscriptions("")
		if err != nil {
			return fmt.Errorf("delivery: load subscriptions: %w", err)
		}
		seen := make(map[string]bool, len(subs))
		for i := range subs {
			s := &subs[i]
			seen[s.ID] = true
			w := workers[s.ID]
			if w != nil && (w.gen != s.Gen || s.Status != hlog.SubActive || w.stopped()) {
				w.drain(drainGrace)
				delete(workers, s.ID)
				// Commit what the old loop learned before the new one
				// loads its state.
				if err := c.sync(); err != nil {
					return err
				}
				w = nil
			}
			if w == nil && s.Status == hlog.SubActive {
				fresh, err := d.cfg.Source.Subscription(s.ID)
				if errors.Is(err, hlog.ErrSubscriptionNotFound) {
					continue
				}
				if err != nil {
					return fmt.Errorf("delivery: load subscription: %w", err)
				}
				if fresh.Status != hlog.SubActive {
					continue
				}
				w, err = startWorker(ctx, d, c, fresh)
				if err != nil {
					// This subscription waits (its cursor keeps what is
					// owed), the others go on; tried again shortly.
					if g, ok := failed[s.ID]; !ok || g != fresh.Gen {
						d.log.Error("subscription cannot start; its deliveries wait", "subscription", s.ID, "error", err)
						failed[s.ID] = fresh.Gen
					}
					retry = true
					continue
				}
				delete(failed, s.ID)
				workers[s.ID] = w
			}
		}
		for id, w := range workers {
			if !seen[id] {
				w.drain(drainGrace)
				delete(workers, id)
			}
		}
		running := make(map[string]uint64, len(workers))
		for id, w := range workers {
			running[id] = w.gen
		}
		d.running.Store(&running)
		var again <-chan time.Time
		if retry {
			again = time.After(workerRetry)
		}
		select {
		case <-again:
		case <-changed:
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return ErrStopped
		}
	}
}

// workerRetry is how soon a subscription whose worker could not start
// (its secret does not open, say) is tried again.
const workerRetry = 5 * time.Second

// drainGrace is how long a subscription's requests in flight may take to
// finish when its configuration changes.
const drainGrace = 5 * time.Second

// result is one worker's news for the committer: an attempt and/or a
// cursor move, the failure state, a disable and operational events.
type result struct {
	sd     hlog.SubDelivery
	events []hlog.NewEvent
}

// committer batches results into DeliveryBatch entries: at most one commit
// in flight, each flushing what arrived while the previous one was
// committing or within FlushInterval of the first result.
type committer struct {
	d      *Dispatcher
	in     chan result
	syncCh chan chan error
	quit   chan struct{}
	done   chan struct{}
	fail   context.CancelCauseFunc

	subs   map[string]*hlog.SubDelivery
	order  []string
	events []hlog.NewEvent
	n      int
}

func newCommitter(d *Dispatcher, fail context.CancelCauseFunc) *committer {
	return &committer{
		d:      d,
		in:     make(chan result, 4*d.cfg.FlushMax),
		syncCh: make(chan chan error),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		fail:   fail,
		subs:   map[string]*hlog.SubDelivery{},
	}
}

func (c *committer) add(r result) {
	sd := c.subs[r.sd.ID]
	if sd == nil {
		cp := r.sd
		cp.Attempts = append([]hlog.Attempt(nil), r.sd.Attempts...)
		c.subs[r.sd.ID] = &cp
		c.order = append(c.order, r.sd.ID)
	} else {
		sd.Attempts = append(sd.Attempts, r.sd.Attempts...)
		if r.sd.Epoch != sd.Epoch {
			sd.Epoch, sd.Cursor = r.sd.Epoch, 0
		}
		if r.sd.Cursor > sd.Cursor {
			sd.Cursor = r.sd.Cursor
		}
		if r.sd.State != nil {
			sd.State = r.sd.State
		}
		if sd.Disable == "" {
			sd.Disable = r.sd.Disable
		}
	}
	c.events = append(c.events, r.events...)
	c.n++
}

func (c *committer) drainInput() {
	for {
		select {
		case r := <-c.in:
			c.add(r)
		default:
			return
		}
	}
}

func (c *committer) flush() error {
	if c.n == 0 {
		return nil
	}
	b := &hlog.DeliveryBatch{Now: time.Now().UnixNano(), Keep: c.d.cfg.Keep, Events: c.events}
	for _, id := range c.order {
		b.Subs = append(b.Subs, *c.subs[id])
	}
	attempts := 0
	for i := range b.Subs {
		attempts += len(b.Subs[i].Attempts)
	}
	c.subs, c.order, c.events, c.n = map[string]*hlog.SubDelivery{}, nil, nil, 0
	if err := c.d.cfg.Committer.CommitDeliveries(b); err != nil {
		return fmt.Errorf("delivery: commit %d attempts: %w", attempts, err)
	}
	return nil
}

func (c *committer) run() {
	defer close(c.done)
	var timer *time.Timer
	var timerC <-chan time.Time
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	for {
		select {
		case r := <-c.in:
			c.add(r)
			if c.n >= c.d.cfg.FlushMax {
				c.drainInput()
				stopTimer()
				if err := c.flush(); err != nil {
					c.failed(err)
					return
				}
			} else if timer == nil {
				timer = time.NewTimer(c.d.cfg.FlushInterval)
				timerC = timer.C
			}
		case <-timerC:
			timer, timerC = nil, nil
			c.drainInput()
			if err := c.flush(); err != nil {
				c.failed(err)
				return
			}
		case reply := <-c.syncCh:
			stopTimer()
			c.drainInput()
			err := c.flush()
			reply <- err
			if err != nil {
				c.failed(err)
				return
			}
		case <-c.quit:
			stopTimer()
			c.drainInput()
			if err := c.flush(); err != nil {
				c.d.log.Info("final results not committed; the next leader resends those deliveries", "error", err)
			}
			return
		}
	}
}

// failed stops the dispatcher: this node can no longer commit.
func (c *committer) failed(err error) {
	c.d.log.Warn("dispatcher stopping: cannot commit results", "error", err)
	c.fail(err)
}

// send hands a result to the committer; it blocks when the committer is
// behind (back-pressure on the delivery loops).
func (c *committer) send(r result) {
	select {
	case c.in <- r:
	case <-c.done:
	}
}

// sync commits everything sent so far and waits for it.
func (c *committer) sync() error {
	reply := make(chan error, 1)
	select {
	case c.syncCh <- reply:
		return <-reply
	case <-c.done:
		return ErrStopped
	}
}

// close flushes what is left and stops the committer; call it after every
// worker has stopped.
func (c *committer) close() {
	close(c.quit)
	<-c.done
}
