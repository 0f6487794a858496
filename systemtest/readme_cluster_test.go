package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// TestREADMEThreeNodes runs the README's three-node walkthrough as
// written (the binary and the ports replaced): three herald serve
// processes that form a cluster with join tokens, over the cluster's own
// TLS; then a publish through one follower is read on the other.
func TestREADMEThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herald processes")
	}
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(raw), "<!-- three-node walkthrough -->\n```shell\n")
	if block, _, ok = strings.Cut(block, "\n```"); !ok {
		t.Fatal("README: no three-node walkthrough block")
	}
	ports := map[string]string{}
	for _, p := range []string{"8080", "8081", "8090", "8091", "8100", "8101"} {
		ports[p] = strings.TrimPrefix(freePort(t, "127.0.0.1"), "127.0.0.1:")
	}
	var script []string
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(l, "go build") {
			continue // the test built the binary
		}
		l = strings.ReplaceAll(l, "./herald ", heraldBin+" ")
		for from, to := range ports {
			l = strings.ReplaceAll(l, "127.0.0.1:"+from, "127.0.0.1:"+to)
		}
		script = append(script, l)
	}
	dir := t.TempDir()
	sh := exec.Command("bash", "-ec", strings.Join(script, "\n"))
	sh.Dir = dir
	sh.Env = baseEnvNoHerald()
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the servers stay in its group
	// A file, not a pipe: the servers the script leaves running keep
	// their output open, and Wait would wait for them.
	logFile, err := os.Create(filepath.Join(dir, "walkthrough.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	sh.Stdout, sh.Stderr = logFile, logFile
	output := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := sh.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("walkthrough output:\n%s", tail(output(), 6000))
		}
	})
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the walkthrough failed: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the walkthrough did not finish in 90s")
	}
	key, err := os.ReadFile(filepath.Join(dir, "d1", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{"127.0.0.1:" + ports["8080"], "127.0.0.1:" + ports["8090"], "127.0.0.1:" + ports["8100"]}
	clientOf := func(addr string) *api.Client {
		c, err := api.NewClient(api.Config{Addresses: []string{addr}, APIKey: strings.TrimSpace(string(key)), MaxRetries: -1, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	testutil.WaitFor(t, 60*time.Second, "three members, every node agreeing on the leader", func() bool {
		leader := ""
		for _, a := range addrs {
			ci, err := clientOf(a).Cluster(context.Background(), &api.QueryOptions{Consistency: api.ConsistencyLocal})
			if err != nil || ci.Leader == "" || len(ci.Nodes) != 3 || (leader != "" && ci.Leader != leader) {
				return false
			}
			leader = ci.Leader
		}
		return true
	})
	var ids []string
	for i := 0; i < 10; i++ {
		res, err := clientOf(addrs[1]).Publish(context.Background(), "shop-1", api.NewEvent{ID: fmt.Sprintf("e%d", i), Type: "store/order/created", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatalf("publish through n2: %v", err)
		}
		ids = append(ids, res.Events[0].ID)
	}
	testutil.WaitFor(t, 20*time.Second, "n3 holds the 10 events", func() bool {
		page, err := clientOf(addrs[2]).Events(context.Background(), "shop-1", api.ReadOptions{Limit: 100, Consistency: api.ConsistencyLocal})
		return err == nil && len(page.Events) == len(ids)
	})
	// Each node made its own certificate request; the CA key came with
	// the enrollment, the admin key stayed where it was made.
	for _, d := range []string{"d1", "d2", "d3"} {
		for _, f := range []string{"tls/node.crt", "tls/node.key", "tls/ca.crt"} {
			if _, err := os.Stat(filepath.Join(dir, d, f)); err != nil {
				t.Errorf("%s/%s: %v", d, f, err)
			}
		}
		if st, err := os.Stat(filepath.Join(dir, d, "tls", "node.key")); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s/tls/node.key mode %v", d, st.Mode().Perm())
		}
	}
	if strings.Contains(output(), strings.TrimSpace(string(key))) {
		t.Error("the admin key appears in the nodes' output")
	}
}

// baseEnvNoHerald is the environment without HERALD_ variables.
func baseEnvNoHerald() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	return env
}
