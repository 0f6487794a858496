package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestProcessKill9Leader builds the herald binary, runs three `herald
// serve` processes, publishes through all of them with retries (same id on
// every retry, like a careful client), kills the leader with SIGKILL
// mid-stream, restarts it, and checks that every acknowledged event is on
// every node exactly once, with one head hash.
func TestProcessKill9Leader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "herald")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	base := t.TempDir()
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = &proc{t: t, bin: bin, id: fmt.Sprintf("n%d", i+1), dir: filepath.Join(base, fmt.Sprintf("n%d", i+1)),
			http: freeAddr(t), raft: freeAddr(t)}
	}
	procs[0].start()
	waitFor(t, 20*time.Second, "n1 ready", func() bool { return status(procs[0].http, "/readyz") == 200 })
	for _, p := range procs[1:] {
		p.join = procs[0].http
		p.start()
	}
	waitFor(t, 30*time.Second, "three members with HTTP addresses", func() bool {
		var ci struct {
			Leader string `json:"leader"`
			Nodes  []struct {
				HTTPAddr string `json:"http_addr"`
			} `json:"nodes"`
		}
		if getInto(procs[2].http, "/v1/cluster", &ci) != nil || ci.Leader == "" || len(ci.Nodes) != 3 {
			return false
		}
		for _, n := range ci.Nodes {
			if n.HTTPAddr == "" {
				return false
			}
		}
		return true
	})

	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		client = &http.Client{Timeout: 5 * time.Second}
	)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"id":%q,"type":"store/order/created","data":{"n":%d}}`, id, i)
				for try := 0; ; try++ {
					p := procs[(w+try)%3]
					resp, err := client.Post("http://"+p.http+"/v1/stores/shop/events", "application/json", strings.NewReader(body))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 201 || resp.StatusCode == 200 {
							mu.Lock()
							acked[id] = true
							mu.Unlock()
							break
						}
					}
					select {
					case <-stop:
						return // unacknowledged: allowed to be present or not
					case <-time.After(50 * time.Millisecond): // client back-off
					}
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, 30*time.Second, "200 events acknowledged", func() bool { return count() >= 200 })

	leader := leaderProc(t, procs)
	leader.kill9()
	before := count()
	waitFor(t, 30*time.Second, "publishing resumed after the kill", func() bool { return count() >= before+200 })
	close(stop)
	wg.Wait()

	leader.join = ""
	leader.start()
	var want struct {
		LastSeq  uint64 `json:"last_seq"`
		HeadHash string `json:"head_hash"`
	}
	waitFor(t, 60*time.Second, "all nodes hold the same log", func() bool {
		var first *struct {
			LastSeq  uint64 `json:"last_seq"`
			HeadHash string `json:"head_hash"`
		}
		for _, p := range procs {
			var si struct {
				LastSeq  uint64 `json:"last_seq"`
				HeadHash string `json:"head_hash"`
			}
			if getInto(p.http, "/v1/stores/shop?consistency=local", &si) != nil {
				return false
			}
			if first == nil {
				first = &si
			} else if si != *first {
				return false
			}
		}
		want = *first
		return true
	})
	// Read the whole log from every node: every acknowledged id present,
	// no id twice.
	for _, p := range procs {
		seen := map[string]int{}
		var after uint64
		for after < want.LastSeq {
			var page struct {
				Events []struct {
					ID  string `json:"id"`
					Seq uint64 `json:"seq"`
				} `json:"events"`
				Next uint64 `json:"next"`
			}
			if err := getInto(p.http, fmt.Sprintf("/v1/stores/shop/events?after=%d&limit=1000&consistency=local", after), &page); err != nil {
				t.Fatal(err)
			}
			for i, e := range page.Events {
				if e.Seq != after+uint64(i)+1 {
					t.Fatalf("%s: gap at seq %d", p.id, e.Seq)
				}
				seen[e.ID]++
			}
			after = page.Next
		}
		for id := range acked {
			if seen[id] != 1 {
				t.Fatalf("%s: acknowledged %s stored %d times", p.id, id, seen[id])
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s: %s stored %d times", p.id, id, n)
			}
		}
	}
	t.Logf("%d acknowledged, %d stored, leader %s killed with SIGKILL", len(acked), want.LastSeq, leader.id)
}

type proc struct {
	t                        *testing.T
	bin, id, dir, http, raft string
	join                     string
	cmd                      *exec.Cmd
	out                      *bytes.Buffer
}

func (p *proc) start() {
	p.t.Helper()
	args := []string{"serve", "--data", p.dir, "--http", p.http, "--raft", p.raft, "--node-id", p.id, "--log-level", "warn"}
	if p.join != "" {
		args = append(args, "--join", p.join)
	}
	p.cmd = exec.Command(p.bin, args...)
	p.out = &bytes.Buffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd := p.cmd
	p.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if p.t.Failed() {
			p.t.Logf("%s output:\n%s", p.id, p.out)
		}
	})
}

func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Wait()
}

func leaderProc(t *testing.T, procs []*proc) *proc {
	var ci struct {
		Leader string `json:"leader"`
	}
	waitFor(t, 10*time.Second, "leader known", func() bool {
		return getInto(procs[0].http, "/v1/cluster", &ci) == nil && ci.Leader != ""
	})
	for _, p := range procs {
		if p.id == ci.Leader {
			return p
		}
	}
	t.Fatalf("leader %q is not one of ours", ci.Leader)
	return nil
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func status(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getInto(addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
