package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// TestCatchUpFromLogOrSnapshot restarts a follower that missed 20,000
// events (512 bytes each): while the leader still has the entries it
// catches up from the log; after the leader snapshotted and truncated its
// log it must install the snapshot. Both paths are checked (the follower's
// last snapshot index tells which one ran) and timed.
func TestCatchUpFromLogOrSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 10 MB through Raft twice")
	}
	for _, viaSnapshot := range []bool{false, true} {
		name := map[bool]string{false: "log", true: "snapshot"}[viaSnapshot]
		t.Run(name, func(t *testing.T) {
			nodes := mustStartCluster(t, 3, func(c *Config) {
				c.SnapshotInterval = time.Hour // only explicit snapshots
				if viaSnapshot {
					c.TrailingLogs = 8
					// On wal, compaction deletes whole sealed segments
					// only: entries in the open tail segment stay
					// readable, and a follower then catches up from them.
					c.RaftWALSegmentSize = 1 << 20
				}
			})
			leader := leaderOf(t, nodes)
			var f *testNode
			for _, n := range nodes {
				if n != leader {
					f = n
				}
			}
			f.stop()
			data := []byte(`"` + strings.Repeat("x", 510) + `"`)
			for i := 0; i < 40; i++ {
				evs := make([]hlog.NewEvent, 500)
				for j := range evs {
					evs[j] = hlog.NewEvent{Type: "t", Data: data}
				}
				if _, err := leader.Publish(context.Background(), httpapi.PublishRequest{Store: "s", Events: evs}); err != nil {
					t.Fatal(err)
				}
			}
			if viaSnapshot {
				if err := leader.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			f.restart()
			waitConverged(t, nodes, "s", 20000)
			took := time.Since(start)
			snapIdx := f.raft.Stats()["last_snapshot_index"]
			t.Logf("caught up from the %s: 20,000 events (10 MB) in %v (follower's last snapshot index %s)", name, took.Round(time.Millisecond), snapIdx)
			if installed := snapIdx != "0"; installed != viaSnapshot {
				t.Fatalf("expected catch-up from the %s, but last_snapshot_index=%s", name, snapIdx)
			}
		})
	}
}
