package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// TestDiskFullStopsAcknowledgingAndRecovers runs a node on a 4 MB tmpfs
// (needs root to mount; skipped otherwise), publishes until the disk is
// full, and checks: publishes fail with a 503-class error instead of being
// acknowledged, the node does not crash or corrupt its files, and once
// the file system grows it continues by itself; every acknowledged event
// is then stored once, with a verifiable chain.
func TestDiskFullStopsAcknowledgingAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	cfg := fastConfig("n1", filepath.Join(dir, "n1"))
	cfg.Bootstrap = true
	cfg.SnapshotInterval = time.Hour
	cfg.RaftWALSegmentSize = 256 << 10 // segments are preallocated: 64 MiB would not fit
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	ctx := context.Background()
	data := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	var acked []string
	var failure error
	for i := 0; i < 5000 && failure == nil; i++ {
		id := fmt.Sprintf("e%d", i)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.Publish(cctx, httpapi.PublishRequest{Store: "s", Events: []hlog.NewEvent{{ID: id, Type: "t", Data: data}}})
		cancel()
		if err != nil {
			failure = err
			break
		}
		acked = append(acked, id)
	}
	if failure == nil {
		t.Fatal("4 MB never filled up")
	}
	if !errors.Is(failure, httpapi.ErrUnavailable) && !errors.Is(failure, httpapi.ErrTimeout) && !errors.Is(failure, httpapi.ErrNoLeader) && !errors.Is(failure, httpapi.ErrNotLeader) {
		t.Fatalf("a full disk must answer 503 (unavailable/timeout/no leader), got: %v", failure)
	}
	t.Logf("disk full after %d acknowledged events: %v", len(acked), failure)
	// Space returns.
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	waitFor(t, 30*time.Second, "publishing works again", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := n.Publish(cctx, httpapi.PublishRequest{Store: "s", Events: []hlog.NewEvent{{ID: "after", Type: "t", Data: data}}})
		return err == nil
	})
	waitFor(t, 10*time.Second, "ready again", func() bool { return n.Ready(ctx) == nil })
	for _, id := range acked {
		if _, err := n.DB().Get("s", id); err != nil {
			t.Fatalf("acknowledged %s: %v", id, err)
		}
	}
	if err := n.DB().VerifyChain("s"); err != nil {
		t.Fatal(err)
	}
	if err := n.DB().Check(); err != nil {
		t.Fatalf("bbolt check after the disk filled up: %v", err)
	}
}
