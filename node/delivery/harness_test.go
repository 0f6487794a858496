package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// env is a dispatcher over a real event log, committing straight into it
// (what the FSM would do), without Raft.
type env struct {
	t       *testing.T
	db      *hlog.DB
	com     *localCommitter
	d       *Dispatcher
	cancel  context.CancelFunc
	done    chan error
	seq     atomic.Int64
	running bool
}

// localCommitter applies result batches to the log directly; fail makes
// it refuse, as a node that lost leadership would.
type localCommitter struct {
	db      *hlog.DB
	fail    atomic.Bool
	mu      sync.Mutex
	batches int
	results int
}

// errNotLeader is what a failing localCommitter returns.
var errNotLeader = errors.New("not the leader")

func (c *localCommitter) CommitDeliveries(b *hlog.DeliveryBatch) error {
	if c.fail.Load() {
		return errNotLeader
	}
	c.mu.Lock()
	c.batches++
	for _, s := range b.Subs {
		c.results += len(s.Attempts)
	}
	c.mu.Unlock()
	return c.db.Update(func(tx *hlog.Tx) error { return tx.ApplyDeliveries(*b) })
}

func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	db := testutil.TempDB(t) // checked and closed after e.stop (cleanups run last first)
	e := &env{t: t, db: db, com: &localCommitter{db: db}}
	cfg := Config{Source: db, Committer: e.com, Logger: testutil.Quiet(), FlushInterval: 2 * time.Millisecond,
		Sender: NewSender(SenderConfig{UserAgent: "Herald/test"}),
		NewID:  func(time.Time) string { return fmt.Sprintf("op_%d", e.seq.Add(1)) }}
	if tweak != nil {
		tweak(&cfg)
	}
	e.d = New(cfg)
	t.Cleanup(func() {
		if err := e.stop(); err != nil && !errors.Is(err, ErrStopped) {
			t.Errorf("dispatcher: %v", err)
		}
	})
	return e
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done, e.running = cancel, make(chan error, 1), true
	go func() { e.done <- e.d.Run(ctx) }()
}

// stop stops the dispatcher (as on losing leadership) and returns Run's
// error.
func (e *env) stop() error {
	if !e.running {
		return nil
	}
	e.running = false
	e.cancel()
	select {
	case err := <-e.done:
		return err
	case <-time.After(20 * time.Second):
		e.t.Fatal("dispatcher did not stop")
		return nil
	}
}

// wait waits up to d for the dispatcher to stop by itself (a failed
// commit) and returns Run's error.
func (e *env) wait(d time.Duration) error {
	e.t.Helper()
	select {
	case err := <-e.done:
		e.running = false
		return err
	case <-time.After(d):
		e.t.Fatalf("dispatcher still running after %v", d)
		return nil
	}
}

// publish appends events of the given types (data {"n":i}) and returns
// their seqs.
func (e *env) publish(store string, types ...string) []uint64 {
	e.t.Helper()
	evs := make([]hlog.NewEvent, len(types))
	for i, typ := range types {
		n := e.seq.Add(1)
		evs[i] = hlog.NewEvent{ID: fmt.Sprintf("evt_%d", n), Type: typ, Version: "1", Timestamp: time.Now().UnixNano(), Data: []byte(fmt.Sprintf(`{"n":%d}`, n))}
	}
	var out []uint64
	err := e.db.Update(func(tx *hlog.Tx) error {
		res, err := tx.Append(store, evs)
		for _, r := range res {
			out = append(out, r.Event.Seq)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) publishN(store, typ string, n int) []uint64 {
	types := make([]string, n)
	for i := range types {
		types[i] = typ
	}
	return e.publish(store, types...)
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// subscribe creates a subscription (defaults applied) and returns it.
func (e *env) subscribe(s hlog.Subscription) hlog.Subscription {
	e.t.Helper()
	if s.ID == "" {
		s.ID = fmt.Sprintf("sub_%d", e.seq.Add(1))
	}
	if s.Store == "" {
		s.Store = "shop"
	}
	if len(s.Secrets) == 0 {
		s.Secrets = []hlog.Secret{{Key: testSecret}}
	}
	s.CreatedAt, s.UpdatedAt = time.Now().UnixNano(), time.Now().UnixNano()
	s.ApplyDefaults()
	if err := e.db.Update(func(tx *hlog.Tx) error { return tx.CreateSubscription(s, 0) }); err != nil {
		e.t.Fatal(err)
	}
	got, err := e.db.Subscription(s.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *env) sub(id string) hlog.Subscription {
	e.t.Helper()
	s, err := e.db.Subscription(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) attempts(id string, q hlog.AttemptQuery) []hlog.Attempt {
	e.t.Helper()
	q.Limit = 1000
	as, _, err := e.db.Attempts(id, q)
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

func (e *env) retries(id string) []hlog.RetryEntry {
	e.t.Helper()
	rs, err := e.db.Retries(id, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) patch(id string, p hlog.SubPatch) {
	e.t.Helper()
	err := e.db.Update(func(tx *hlog.Tx) error { _, err := tx.PatchSubscription(id, p, time.Now().UnixNano()); return err })
	if err != nil {
		e.t.Fatal(err)
	}
}

func durations(ds ...string) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		v, err := time.ParseDuration(d)
		if err != nil {
			panic(err)
		}
		out[i] = v
	}
	return out
}
