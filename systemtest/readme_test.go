package systemtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/internal/testutil"
)

// TestREADME runs the README's sh blocks top to bottom, as a new user
// would, against a fresh `herald serve` and a local webhook receiver, and
// checks every answer against the "# →" line under it: the HTTP status and
// the body's shape ("…" stands for anything), or the output of a CLI
// command. A README that shows what Herald does not do fails here.
//
// Blocks fenced as shell (not sh) are not run: starting servers, clusters,
// benchmarks. localhost:8080 becomes the test node's address and
// 127.0.0.1:9000 the receiver's; herald is the binary built for the suite.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a herald process")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README test needs curl (.ci/run installs it)")
	}
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := readmeSteps(string(raw))
	if len(steps) < 10 {
		t.Fatalf("only %d steps found in the README's sh blocks", len(steps))
	}

	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	dir := t.TempDir()
	addr := freePort(t, "127.0.0.1")
	// In the directory the script runs in, with the default data dir, as
	// a newcomer would: the README reads herald-data/admin.key.
	// The README starts its node with the loopback allow its receiver
	// needs; so does this test.
	const allow = "serve --delivery-allow 127.0.0.0/8"
	if !strings.Contains(string(raw), allow) {
		t.Fatalf("the README no longer starts its node with %q: update this test with it", allow)
	}
	cmd := exec.Command(heraldBin, "serve", "--delivery-allow", "127.0.0.0/8", "--http", addr, "--raft", freePort(t, "127.0.0.1"), "--log-level", "warn")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("herald serve output:\n%s", tail(out.String(), 4000))
		}
	}()
	testutil.WaitFor(t, 15*time.Second, "the node is ready", func() bool { return ready(addr) })
	waitAdminKey(t, filepath.Join(dir, "herald-data"))

	// One bash process runs every step, so variables carry over. curl
	// reports each answer's status after its body (unless the body goes
	// to a file).
	var script strings.Builder
	script.WriteString(`curl() {
  case " $* " in
    *" -o "*) command curl --max-time 60 "$@" ;;
    *) command curl --max-time 60 -w '\n@@STATUS %{http_code}\n' "$@" ;;
  esac
}
`)
	local := strings.NewReplacer("localhost:8080", addr, "127.0.0.1:9000", strings.TrimPrefix(recv.URL, "http://"))
	for i := range steps {
		steps[i].cmd = local.Replace(steps[i].cmd)
		for j := range steps[i].expect {
			steps[i].expect[j] = local.Replace(steps[i].expect[j])
		}
		fmt.Fprintf(&script, "echo '@@BEGIN %d'\n{\n%s\n}\necho \"@@END %d $?\"\n", i, steps[i].cmd, i)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(heraldBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HERALD_ADDR=http://"+addr)
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	if err := sh.Run(); err != nil {
		t.Fatalf("the README's commands: %v\nstderr:\n%s", err, stderr.String())
	}
	outputs := splitOutputs(t, stdout.String(), len(steps))
	for i, s := range steps {
		o := outputs[i]
		if o.rc != 0 {
			t.Errorf("README line %d: %q exited %d\noutput: %s", s.line, s.cmd, o.rc, o.text)
			continue
		}
		if err := s.check(o.text); err != nil {
			t.Errorf("README line %d: %s\ncommand: %s\noutput: %s", s.line, err, s.cmd, o.text)
		}
	}
	if t.Failed() {
		t.Logf("stderr of the README's commands:\n%s", tail(stderr.String(), 4000))
	}
}

// readmeStep is a group of commands up to (and checked by) the "# →"
// lines under them.
type readmeStep struct {
	line   int    // README line of the first command
	cmd    string // shell text
	expect []string
}

// readmeSteps splits the README's sh blocks into steps.
func readmeSteps(readme string) []readmeStep {
	var steps []readmeStep
	var cur readmeStep
	in := false
	flush := func() {
		if strings.TrimSpace(cur.cmd) != "" {
			steps = append(steps, cur)
		}
		cur = readmeStep{}
	}
	for i, l := range strings.Split(readme, "\n") {
		switch {
		case !in && l == "```sh":
			in = true
		case in && l == "```":
			flush()
			in = false
		case !in:
		case strings.HasPrefix(l, "# → "):
			cur.expect = append(cur.expect, strings.TrimPrefix(l, "# → "))
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
			if len(cur.expect) > 0 {
				flush()
			}
		default:
			if len(cur.expect) > 0 {
				flush()
			}
			if cur.cmd == "" {
				cur.line = i + 1
			}
			cur.cmd += l + "\n"
		}
	}
	return steps
}

var httpExpect = regexp.MustCompile(`^(\d{3}) (.*)$`)

// check compares a step's output with its expectation: "STATUS BODY" for
// curl answers, else the command's output lines.
func (s readmeStep) check(out string) error {
	if len(s.expect) == 0 {
		return nil
	}
	if m := httpExpect.FindStringSubmatch(s.expect[0]); m != nil && len(s.expect) == 1 {
		parts := strings.Split(strings.TrimSpace(out), "\n@@STATUS ")
		if len(parts) != 2 {
			return fmt.Errorf("want one HTTP answer, got %d", len(parts)-1)
		}
		if got, _ := strconv.Atoi(strings.TrimSpace(parts[1])); strconv.Itoa(got) != m[1] {
			return fmt.Errorf("status %s, README says %s", strings.TrimSpace(parts[1]), m[1])
		}
		if !globMatch(m[2], strings.TrimSpace(parts[0])) {
			return fmt.Errorf("body does not match the README's %s", m[2])
		}
		return nil
	}
	want := strings.Join(s.expect, "\n")
	if !globMatch(want, strings.TrimSpace(out)) {
		return fmt.Errorf("output does not match the README's\n%s", want)
	}
	return nil
}

// globMatch matches s against a pattern where "…" stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("(?s)^" + strings.Join(parts, ".*") + "$").MatchString(s)
}

type stepOutput struct {
	text string
	rc   int
}

func splitOutputs(t *testing.T, all string, n int) []stepOutput {
	t.Helper()
	outs := make([]stepOutput, n)
	begin := regexp.MustCompile(`(?m)^@@BEGIN (\d+)\n`)
	end := regexp.MustCompile(`(?m)^@@END (\d+) (\d+)$`)
	for i := 0; i < n; i++ {
		b := begin.FindStringSubmatchIndex(all)
		e := end.FindStringSubmatchIndex(all)
		if b == nil || e == nil || all[b[2]:b[3]] != strconv.Itoa(i) || all[e[2]:e[3]] != strconv.Itoa(i) {
			t.Fatalf("step %d: markers out of order in the output:\n%s", i, tail(all, 2000))
		}
		outs[i].text = all[b[1]:e[0]]
		outs[i].rc, _ = strconv.Atoi(all[e[4]:e[5]])
		all = all[e[1]:]
	}
	return outs
}

func TestREADMEParsing(t *testing.T) {
	steps := readmeSteps("x\n```sh\ncurl a \\\n  b\n# → 201 {…}\n\nS=1\ncurl c\n# → 200 {\"x\":…}\n```\n```shell\nnot run\n```\n```sh\nherald version\n# → herald …\n# → …\n```\n")
	if len(steps) != 3 || steps[0].cmd != "curl a \\\n  b\n" || steps[1].cmd != "S=1\ncurl c\n" || len(steps[2].expect) != 2 || steps[0].line != 3 {
		t.Fatalf("%+v", steps)
	}
	if err := steps[1].check("{\"x\":1}\n\n@@STATUS 200\n"); err != nil {
		t.Fatal(err)
	}
	if err := steps[1].check("{\"x\":1}\n@@STATUS 201\n"); err == nil {
		t.Fatal("a wrong status passed")
	}
	if err := steps[1].check("{\"y\":1}\n@@STATUS 200\n"); err == nil {
		t.Fatal("a wrong body passed")
	}
	if err := steps[2].check("herald 1.0\nrev abc\n"); err != nil {
		t.Fatal(err)
	}
	if err := steps[2].check("horald 1.0\n"); err == nil {
		t.Fatal("wrong CLI output passed")
	}
}
