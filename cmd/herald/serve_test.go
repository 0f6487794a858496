package main

import (
	"context"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
)

// stuck is a node whose graceful stop never ends (an FSM stalled on a
// failing disk, a leadership transfer that hangs).
type stuck struct{ called chan struct{} }

func (s *stuck) Shutdown(ctx context.Context) error {
	close(s.called)
	select {} // never returns, whatever ctx says
}

// TestStopIsBounded: herald serve returns from a SIGTERM within its stop
// deadline whatever the node is doing.
func TestStopIsBounded(t *testing.T) {
	s := &stuck{called: make(chan struct{})}
	start := time.Now()
	err := shutdownWithin(s, testutil.Quiet(), 300*time.Millisecond+2*time.Second)
	took := time.Since(start)
	<-s.called
	if err == nil || took > 10*time.Second {
		t.Fatalf("stop of a stuck node: %v after %s", err, took)
	}
	if stopDeadline > 10*time.Second {
		t.Fatalf("the stop deadline is %s, over the 10 s promised", stopDeadline)
	}
}
