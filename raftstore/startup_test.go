package raftstore

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
)

// TestNormalStartLogsNoWarnings starts a three-node cluster over TCP on
// loopback the way node does (one node bootstraps, the others are added
// with empty logs) and checks that raft logs nothing at WARN or above on
// the way: a normal start must not look like a failure. The timeouts are
// generous so that a busy machine does not cause real warnings (a missed
// heartbeat is one).
func TestNormalStartLogsNoWarnings(t *testing.T) {
	rec := testutil.NewLogRecorder(slog.LevelWarn)
	var stores []*Store
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		s, err := New(Config{
			ID: id, Dir: t.TempDir(), Bind: "127.0.0.1:0", DB: mustDB(t),
			Logger:           rec.Logger().With("subsystem", "raft", "node", id),
			Bootstrap:        i == 1,
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close %s: %v", id, err)
			}
		})
		stores = append(stores, s)
	}
	testutil.WaitFor(t, 10*time.Second, "n1 leads", stores[0].IsLeader)
	for _, s := range stores[1:] {
		if err := stores[0].AddVoter(s.ID(), s.Addr(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendOne(stores[0], "e1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "every node applied the entry", func() bool {
		for _, s := range stores {
			if si, err := s.cfg.DB.Store("p"); err != nil || si.LastSeq != 1 {
				return false
			}
		}
		return true
	})
	for _, r := range rec.Records() {
		t.Errorf("%s at %v during a normal start: %v", r.Message, r.Level, r.Attrs)
	}
}
