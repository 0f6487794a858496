package systemtest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The fault runs record every client operation on the store: each
// publish attempt (the event's id; the seq it was acknowledged with, or
// an unknown outcome when the attempt failed) and linearizable reads of
// the store's last seq. checkLinearizable then asks porcupine whether one
// sequential log explains them all, in real-time order.

type publishIn struct{ id string }

type publishOut struct {
	seq   uint64
	known bool // false: the attempt failed, and may or may not have stored the event
}

type readIn struct{}

type readOut struct{ last uint64 }

// history collects operations from concurrent clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

// now is the history's clock (monotonic).
func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in, out any, call, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// publish records a publish attempt; a failed one has an unknown outcome
// that may take effect at any later time, so it returns "at infinity".
func (h *history) publish(client int, id string, call int64, seq uint64, err error) {
	if err != nil {
		h.add(client, publishIn{id}, publishOut{}, call, math.MaxInt64)
		return
	}
	h.add(client, publishIn{id}, publishOut{seq: seq, known: true}, call, h.now())
}

// logModel is the per-store log as a state machine whose state is the
// number of events appended. Which seq an event got is read from the
// final log (every node's, checked identical): the model then asks
// whether appending the events in that order, one operation at a time,
// explains every answer. A publish acknowledged with seq s appends the
// event when s-1 are there, or finds it there already (an idempotent
// retry); one that failed may have appended it or not; a linearizable
// read sees exactly what is there.
func logModel(seqOf map[string]uint64) porcupine.Model {
	m := porcupine.NondeterministicModel{
		Init: func() []any { return []any{uint64(0)} },
		Step: func(state, input, output any) []any {
			n := state.(uint64)
			switch in := input.(type) {
			case publishIn:
				out := output.(publishOut)
				s := seqOf[in.id]
				if !out.known {
					if s == n+1 {
						return []any{n, s}
					}
					return []any{n}
				}
				switch {
				case s == 0 || out.seq != s:
					return nil // acknowledged with a seq the log does not give it
				case n+1 == s:
					return []any{s}
				case n >= s:
					return []any{n}
				}
				return nil // acknowledged before the events before it were there
			case readIn:
				if output.(readOut).last == n {
					return []any{n}
				}
				return nil
			}
			return nil
		},
		DescribeOperation: func(input, output any) string {
			switch in := input.(type) {
			case publishIn:
				out := output.(publishOut)
				if !out.known {
					return fmt.Sprintf("publish %s -> ?", in.id)
				}
				return fmt.Sprintf("publish %s -> %d", in.id, out.seq)
			case readIn:
				return fmt.Sprintf("read -> %d", output.(readOut).last)
			}
			return "?"
		},
	}
	return m.ToModel()
}

// checkLinearizable checks h against the final log; on a violation it
// writes porcupine's visualization beside the test's output and fails.
func checkLinearizable(t *testing.T, h *history, seqOf map[string]uint64) {
	t.Helper()
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	model := logModel(seqOf)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, 2*time.Minute)
	t.Logf("linearizability: %d operations checked in %s: %s", len(ops), time.Since(start).Round(time.Millisecond), res)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Errorf("porcupine did not decide within 2 minutes (%d operations)", len(ops))
	default:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("herald-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Errorf("the history is not linearizable: see %s", path)
		} else {
			t.Errorf("the history is not linearizable (no visualization: %v)", err)
		}
	}
}

// TestLinearizabilityChecker: the checker accepts histories one log
// explains and refuses those none does (so a fault run's Ok means
// something).
func TestLinearizabilityChecker(t *testing.T) {
	seqOf := map[string]uint64{"a": 1, "b": 2}
	op := func(client int, in, out any, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	pub := func(seq uint64) publishOut { return publishOut{seq: seq, known: true} }
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{"sequential", []porcupine.Operation{
			op(0, publishIn{"a"}, pub(1), 0, 10), op(0, publishIn{"b"}, pub(2), 20, 30), op(1, readIn{}, readOut{2}, 40, 50)}, true},
		{"concurrent publishes in either order", []porcupine.Operation{
			op(0, publishIn{"b"}, pub(2), 0, 30), op(1, publishIn{"a"}, pub(1), 5, 20), op(2, readIn{}, readOut{2}, 40, 50)}, true},
		{"an idempotent retry", []porcupine.Operation{
			op(0, publishIn{"a"}, publishOut{}, 0, math.MaxInt64), op(0, publishIn{"a"}, pub(1), 20, 30), op(1, readIn{}, readOut{1}, 40, 50)}, true},
		{"a failed attempt that stored its event", []porcupine.Operation{
			op(0, publishIn{"a"}, publishOut{}, 0, math.MaxInt64), op(1, readIn{}, readOut{1}, 40, 50)}, true},
		{"a stale read", []porcupine.Operation{
			op(0, publishIn{"a"}, pub(1), 0, 10), op(1, readIn{}, readOut{0}, 20, 30)}, false},
		{"a read from the future", []porcupine.Operation{
			op(1, readIn{}, readOut{2}, 0, 10), op(0, publishIn{"a"}, pub(1), 20, 30), op(0, publishIn{"b"}, pub(2), 40, 50)}, false},
		{"acknowledged out of order", []porcupine.Operation{
			op(0, publishIn{"b"}, pub(2), 0, 10), op(0, publishIn{"a"}, pub(1), 20, 30)}, false},
		{"a seq the log does not give", []porcupine.Operation{op(0, publishIn{"a"}, pub(2), 0, 10)}, false},
	}
	for _, c := range cases {
		if got := porcupine.CheckOperations(logModel(seqOf), c.ops); got != c.want {
			t.Errorf("%s: linearizable %v, want %v", c.name, got, c.want)
		}
	}
}
