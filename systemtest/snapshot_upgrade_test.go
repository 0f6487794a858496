package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// snapshotDisk sums the files under dir/snapshots and counts the full
// copies of the event log (state.bin) among them.
func snapshotDisk(t *testing.T, dir string) (bytes int64, states int) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, "snapshots"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		bytes += st.Size()
		if d.Name() == "state.bin" {
			states++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bytes, states
}

// recoverWith runs bin's herald recover on the stopped node n with itself
// as the only member; every recover writes a Raft snapshot.
func recoverWith(t *testing.T, bin string, n *node) {
	t.Helper()
	peers := filepath.Join(t.TempDir(), "peers.json")
	b, _ := json.Marshal([]map[string]string{{"id": n.id, "raft_addr": n.proxy.addr()}})
	if err := os.WriteFile(peers, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "recover", "--data", n.dir, "--peers", peers).CombinedOutput(); err != nil {
		t.Fatalf("%s recover: %v\n%s", bin, err, out)
	}
}

// TestUpgradeDropsFullSnapshots: a data dir of the previous release with
// a full snapshot (state.bin: the whole event log, made here by that
// release's herald recover) starts on this version with every event, and
// the full copy is gone; a snapshot this version takes (its herald
// recover's) is metadata only, a few hundred bytes; the node starts again
// after it with every event and takes writes.
func TestUpgradeDropsFullSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs herald processes")
	}
	n := startOldSingleNode(t)
	data := json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)
	published := 0
	publish := func() {
		t.Helper()
		if _, err := apiOf(n.http).Publish(context.Background(), "shop", api.NewEvent{ID: fmt.Sprintf("e%03d", published), Type: "t", Data: data}); err != nil {
			t.Fatal(err)
		}
		published++
	}
	for i := 0; i < 50; i++ {
		publish()
	}
	n.term()
	recoverWith(t, n.bin, n) // the previous release's own recover
	full, states := snapshotDisk(t, n.dir)
	if states != 1 || full < 50*2000 {
		t.Fatalf("the previous release's snapshot: %d bytes, %d state files (want a full copy)", full, states)
	}

	n.bin = ""
	n.restart()
	adminKeys.Store(n.http, waitAdminKey(t, n.dir))
	testutil.WaitFor(t, 20*time.Second, "upgraded node ready", func() bool { return ready(n.http) })
	check := func(when string) {
		t.Helper()
		st, err := apiOf(n.http).Store(context.Background(), "shop", nil)
		if err != nil || st.LastSeq != uint64(published) {
			t.Fatalf("%s: %+v %v (want %d events)", when, st, err, published)
		}
	}
	check("after the upgrade")
	if size, states := snapshotDisk(t, n.dir); states != 0 || size > 4096 {
		t.Fatalf("after the upgrade snapshots/ holds %d bytes, %d full copies (was %d bytes)", size, states, full)
	}
	publish()
	n.term()
	recoverWith(t, heraldBin, n)
	size, states := snapshotDisk(t, n.dir)
	if states != 0 || size > 4096 {
		t.Fatalf("a snapshot of this version: snapshots/ holds %d bytes, %d full copies", size, states)
	}
	t.Logf("snapshots/: %d bytes with the previous release's full snapshot, %d after this version's", full, size)
	n.restart()
	testutil.WaitFor(t, 20*time.Second, "node ready after its recover", func() bool { return ready(n.http) })
	check("after a metadata snapshot and a restart")
	publish()
	check("after a publish")
}
