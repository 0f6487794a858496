package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// TestSecondNodeOnTheSameDataDirFails: while a node runs, a second node on
// its data directory fails to open within about a second, with an error
// that says the directory is in use (hlog.ErrLocked), and the first node
// is not disturbed by the attempt.
func TestSecondNodeOnTheSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig("n1", dir)
	cfg.Bootstrap = true
	first := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "first node leads", first.IsLeader)

	again := fastConfig("n1", dir) // fresh ports: only the directory is shared
	again.Bootstrap = true
	second, err := New(again)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = second.Open()
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("a second node opened a data directory in use")
	}
	if !errors.Is(err, hlog.ErrLocked) {
		t.Fatalf("err = %v, want hlog.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "in use by another herald process") {
		t.Fatalf("message %q does not name the directory in use", err)
	}
	if took > 2*time.Second {
		t.Fatalf("took %v to fail", took)
	}
	// The first node goes on serving.
	if code, b := publish(t, first.HTTPAddr(), "s", `{"type":"t","data":1}`); code != 201 {
		t.Fatalf("publish to the first node after the failed second open: %d %s", code, b)
	}
	if si := localStore(t, first, "s"); si.LastSeq != 1 {
		t.Fatalf("first node's store after the failed open: %+v", si)
	}
}
