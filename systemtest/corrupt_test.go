package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// TestCorruptEventLogDetectedAtStart damages a stopped node's events.db
// (truncated; garbage over the first pages) and checks that `herald
// serve` refuses to start with a clear error instead of serving a broken
// log.
func TestCorruptEventLogDetectedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herald processes")
	}
	for _, damage := range []struct {
		name string
		do   func(path string) error
	}{
		{"truncated", func(p string) error {
			return os.Truncate(p, 48<<10) // inside the ~100 KB of events
		}},
		{"overwritten", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, 16<<10), 0)
			return err
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			c := startCluster(t, 1)
			n := c.nodes[0]
			for i := 0; i < 50; i++ {
				res, err := apiOf(n.http).Publish(context.Background(), "shop", api.NewEvent{Type: "t", Data: json.RawMessage(`{"pad":"` + strings.Repeat("x", 2000) + `"}`)})
				if err != nil || !res.Created {
					t.Fatalf("publish: %+v %v", res, err)
				}
			}
			n.term()
			if err := damage.do(filepath.Join(n.dir, "events.db")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(heraldBin, "serve", "--data", n.dir, "--http", n.http, "--raft", n.raft, "--raft-advertise", n.proxy.addr(), "--node-id", n.id)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("started on a damaged log:\n%s", out.String())
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running on a damaged log after 20s:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "events.db") || strings.Contains(out.String(), "goroutine ") {
				t.Fatalf("no clear error (want the file named, no panic):\n%s", tail(out.String(), 3000))
			}
			t.Logf("%s: %s", damage.name, strings.TrimSpace(tail(out.String(), 400)))
		})
	}
}
