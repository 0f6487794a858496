package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-io/herald/api"
)

func sameJSON(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("data %s, want %s", got, want)
	}
}

// rawGet is a GET straight to the API, for comparing the CLI's JSON with
// the API's bytes.
func rawGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %v", u, resp.StatusCode, b, err)
	}
	return b
}

// TestPublish covers herald publish of one event: table and JSON output,
// --data inline, @FILE, - and default null, --version, and duplicates
// through --id and --key (200: marked in the table, the original in JSON).
func TestPublish(t *testing.T) {
	_, c := singleNode(t)

	rows := tableRows(c.ok("publish", "shop-1", "store/order/created", "--data", `{"order":1001}`))
	if len(rows) != 2 || strings.Join(rows[0], " ") != "SEQ ID TYPE VERSION TIMESTAMP DATA STATUS" {
		t.Fatalf("table: %q", rows)
	}
	if r := rows[1]; r[0] != "1" || !strings.HasPrefix(r[1], "evt_") || r[2] != "store/order/created" || r[3] != "1" || r[5] != `{"order":1001}` || r[6] != "created" {
		t.Fatalf("row: %q", r)
	}

	e := okJSON[api.Event](c, "publish", "shop-1", "store/order/paid", "--data", `{"order": 1001, "total": "59.90"}`, "--id", "pay-1001", "--version", "2")
	if e.Seq != 2 || e.ID != "pay-1001" || e.Version != "2" || e.Type != "store/order/paid" || e.Store != "shop-1" || len(e.Hash) != 64 {
		t.Fatalf("published %+v", e)
	}
	sameJSON(t, e.Data, `{"order":1001,"total":"59.90"}`)

	// Again with the same id: the original, marked duplicate.
	dup := okJSON[api.Event](c, "publish", "shop-1", "store/order/paid", "--data", `{"other":true}`, "--id", "pay-1001")
	if dup.Seq != 2 || dup.Hash != e.Hash {
		t.Fatalf("duplicate by id: %+v, want seq 2", dup)
	}
	if r := tableRows(c.ok("publish", "shop-1", "store/order/paid", "--id", "pay-1001")); r[1][0] != "2" || r[1][6] != "duplicate" {
		t.Fatalf("duplicate by id in a table: %q", r)
	}
	// The same with an idempotency key.
	k1 := okJSON[api.Event](c, "publish", "shop-1", "store/order/created", "--data", `{"order":1002}`, "--key", "order-1002-created")
	if k1.Seq != 3 {
		t.Fatalf("keyed publish: seq %d", k1.Seq)
	}
	if r := tableRows(c.ok("publish", "shop-1", "store/order/created", "--data", `{"order":1002}`, "--key", "order-1002-created")); r[1][0] != "3" || r[1][1] != k1.ID || r[1][6] != "duplicate" {
		t.Fatalf("duplicate by key in a table: %q", r)
	}

	// --data @FILE, --data - and no --data (null).
	file := filepath.Join(t.TempDir(), "data.json")
	writeFile(t, file, "{\"from\": \"file\",\n \"n\": [1, 2]}\n")
	fe := okJSON[api.Event](c, "publish", "shop-1", "file", "--data", "@"+file)
	sameJSON(t, fe.Data, `{"from":"file","n":[1,2]}`)
	// Stored byte for byte as in the file.
	var stored struct{ Data json.RawMessage }
	if err := json.Unmarshal(rawGet(t, c.addr+"/v1/stores/shop-1/events/"+fe.ID), &stored); err != nil || string(stored.Data) != "{\"from\": \"file\",\n \"n\": [1, 2]}" {
		t.Fatalf("stored data %q (%v)", stored.Data, err)
	}
	r := c.runIn(opts{stdin: `["from", "stdin"]`}, "publish", "shop-1", "stdin", "--data", "-", "-o", "json")
	if r.code != 0 {
		t.Fatal(r)
	}
	sameJSON(t, decodeOne[api.Event](t, r.stdout).Data, `["from","stdin"]`)
	if ev := okJSON[api.Event](c, "publish", "shop-1", "nothing"); ev.Seq != 6 || string(ev.Data) != "null" {
		t.Fatalf("no --data: %+v", ev)
	}
	r = c.run("publish", "shop-1", "file", "--data", "@"+filepath.Join(t.TempDir(), "missing.json"))
	if r.code != 1 || !strings.Contains(r.stderr, "error: --data: open ") {
		t.Fatalf("missing data file:\n%s", r)
	}
	// A publish the server refuses.
	wantAPIError(t, c.run("publish", "Bad Store", "t"), "invalid_store")
	wantAPIError(t, c.run("publish", "_herald", "t"), "reserved_store")
}

// TestEvents covers herald events: tables, filters, paging with the next
// cursor, one event by id, the JSON lines (byte for byte the API's event
// objects, data as published), data cut in tables only, local time.
func TestEvents(t *testing.T) {
	n, c := singleNode(t)
	base := "http://" + n.HTTPAddr()
	for i, typ := range []string{"store/order/created", "store/stock/moved", "store/order/paid", "store/order/created"} {
		c.ok("publish", "shop-1", typ, "--data", fmt.Sprintf(`{"i":%d}`, i+1))
	}
	// Data with whitespace and HTML characters, published straight to the
	// API: the CLI must show it exactly as stored.
	raw := "{\"html\": \"<b>x</b> & more\",\r\n   \"long\": \"" + strings.Repeat("é", 100) + "\"}"
	resp, err := http.Post(base+"/v1/stores/shop-1/events", "application/json", strings.NewReader(`{"type":"raw","data":`+raw+`}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("raw publish: %v %v", err, resp)
	}
	resp.Body.Close()

	rows := tableRows(c.ok("events", "shop-1"))
	if len(rows) != 6 || strings.Join(rows[0], " ") != "SEQ ID TYPE VERSION TIMESTAMP DATA" {
		t.Fatalf("table:\n%q", rows)
	}
	for i, r := range rows[1:] {
		if r[0] != fmt.Sprint(i+1) {
			t.Fatalf("row %d: %q", i, r)
		}
	}
	// The long data is compacted and cut in the table only.
	last := strings.Split(strings.TrimRight(c.ok("events", "shop-1", "--after", "4"), "\n"), "\n")[1]
	cell := last[strings.Index(last, `{"html"`):]
	if utf8.RuneCountInString(cell) != 60 || !strings.HasSuffix(cell, "…") || !strings.HasPrefix(cell, `{"html":"<b>x</b> & more","long":"éé`) || strings.Contains(last, "\r") {
		t.Fatalf("data cell %q", cell)
	}

	// Filters and paging.
	r := c.run("events", "shop-1", "--type", "store/order/*", "--after", "1", "--limit", "2")
	rows = tableRows(r.stdout)
	if r.code != 0 || len(rows) != 3 || rows[1][0] != "3" || rows[2][0] != "4" || rows[1][2] != "store/order/paid" {
		t.Fatalf("filtered page:\n%s", r)
	}
	if r.stderr != "next page: herald events shop-1 --after 4 --type 'store/order/*'\n" {
		t.Fatalf("next-page hint: %q", r.stderr)
	}
	evs := jsonLines[api.Event](t, c.ok("events", "shop-1", "--type", "store.stock.*", "--type", "raw", "-o", "json"))
	if len(evs) != 2 || evs[0].Seq != 2 || evs[1].Seq != 5 {
		t.Fatalf("two type patterns: %+v", evs)
	}
	if r := c.run("events", "shop-1", "--after", "5"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "no events after seq 5") {
		t.Fatalf("empty page:\n%s", r)
	}

	// JSON lines are the API's event objects, byte for byte.
	var page struct{ Events []json.RawMessage }
	if err := json.Unmarshal(rawGet(t, base+"/v1/stores/shop-1/events"), &page); err != nil {
		t.Fatal(err)
	}
	out := c.ok("events", "shop-1", "-o", "json")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 || len(page.Events) != 5 {
		t.Fatalf("json lines:\n%s", out)
	}
	for i := range lines {
		if lines[i] != string(page.Events[i]) && i != 4 {
			t.Fatalf("line %d:\n%s\nAPI:\n%s", i, lines[i], page.Events[i])
		}
	}
	// Data byte for byte, but for its line breaks (JSON whitespace), which
	// become spaces so that the event stays on one line.
	if oneLine := strings.NewReplacer("\r", " ", "\n", " ").Replace(string(page.Events[4])); lines[4] != oneLine ||
		!strings.Contains(lines[4], `"data":{"html": "<b>x</b> & more",     "long": "éé`) {
		t.Fatalf("line 4:\n%s\nAPI:\n%s", lines[4], page.Events[4])
	}

	// One event by id.
	one := decodeOne[api.Event](t, lines[2])
	got, want := c.ok("events", "shop-1", one.ID, "-o", "json"), string(rawGet(t, base+"/v1/stores/shop-1/events/"+one.ID))
	if got != strings.TrimRight(want, "\n")+"\n" || got != lines[2]+"\n" {
		t.Fatalf("event by id: %s\nAPI: %s", got, want)
	}
	block := c.ok("events", "shop-1", one.ID)
	for _, want := range []string{"id:        " + one.ID, "seq:       3", "hash:      " + one.Hash, `data:      {"i":3}`} {
		if !strings.Contains(block, want+"\n") {
			t.Fatalf("event block lacks %q:\n%s", want, block)
		}
	}
	wantAPIError(t, c.run("events", "shop-1", "evt_nope"), "not_found")

	// Times are shown in local time (TZ).
	if _, err := time.LoadLocation("Asia/Tokyo"); err != nil {
		t.Logf("no zoneinfo for Asia/Tokyo (%v): local time checked in UTC only", err)
	} else {
		r := c.runIn(opts{env: []string{"TZ=Asia/Tokyo"}}, "events", "shop-1", "--limit", "1")
		ts, err := time.Parse(time.RFC3339, tableRows(r.stdout)[1][4])
		if err != nil || !strings.HasSuffix(tableRows(r.stdout)[1][4], "+09:00") || ts.Sub(decodeOne[api.Event](t, lines[0]).Timestamp).Abs() >= time.Millisecond {
			t.Fatalf("Tokyo time: %v\n%s", err, r)
		}
	}
	if ts := tableRows(c.ok("events", "shop-1", "--limit", "1"))[1][4]; !strings.HasSuffix(ts, "Z") {
		t.Fatalf("UTC time %q", ts)
	}
}

// publishLog records the publish requests a proxy forwarded: how many
// events each held.
type publishLog struct {
	mu    sync.Mutex
	sizes []int
}

func (p *publishLog) get() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.sizes...)
}

// countingProxy forwards to target and records publish requests.
func countingProxy(t *testing.T, target string) (string, *publishLog) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	log := &publishLog{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") {
			body, _ := io.ReadAll(r.Body)
			var b struct{ Events []json.RawMessage }
			n := 1 // a single event
			if json.Unmarshal(body, &b) == nil && b.Events != nil {
				n = len(b.Events)
			}
			log.mu.Lock()
			log.sizes = append(log.sizes, n)
			log.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

// TestPublishBatch: --batch sends JSON lines in requests of at most 1,000
// events (1,500 lines: two requests, seqs in order), skips empty lines,
// reads stdin, and marks the duplicates of a mixed batch.
func TestPublishBatch(t *testing.T) {
	n, _ := singleNode(t)
	proxy, posts := countingProxy(t, "http://"+n.HTTPAddr())
	c := client{t, proxy}
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "{\"type\":\"bulk/item\",\"id\":\"b-%d\",\"data\":{\"i\": %d}}\n", i, i)
		if i%500 == 0 {
			b.WriteString("\n")
		}
	}
	file := filepath.Join(t.TempDir(), "events.jsonl")
	writeFile(t, file, b.String())

	evs := jsonLines[api.Event](t, c.ok("publish", "bulk", "--batch", file, "-o", "json"))
	if len(evs) != 1500 {
		t.Fatalf("%d events printed", len(evs))
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.ID != fmt.Sprintf("b-%d", i) || e.Type != "bulk/item" {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	sameJSON(t, evs[1499].Data, `{"i":1499}`)
	if got := posts.get(); !reflect.DeepEqual(got, []int{1000, 500}) {
		t.Fatalf("publish requests for 1,500 events held %v events, want [1000 500]", got)
	}

	// A mixed batch from stdin: an old event, a new one, the new one again.
	r := c.runIn(opts{stdin: "{\"type\":\"bulk/item\",\"id\":\"b-7\"}\n{\"type\":\"new\",\"id\":\"n-1\",\"version\":\"3\"}\n\n{\"type\":\"new\",\"id\":\"n-1\"}\n"},
		"publish", "bulk", "--batch", "-")
	rows := tableRows(r.stdout)
	if r.code != 0 || len(rows) != 4 {
		t.Fatal(r)
	}
	for i, want := range [][2]string{{"8", "duplicate"}, {"1501", "created"}, {"1501", "duplicate"}} {
		if rows[i+1][0] != want[0] || rows[i+1][6] != want[1] {
			t.Fatalf("row %d: %q, want seq %s %s", i+1, rows[i+1], want[0], want[1])
		}
	}
	if rows[2][3] != "3" {
		t.Fatalf("version of n-1: %q", rows[2])
	}
	// The whole file again: every event is a duplicate, nothing stored.
	rows = tableRows(c.ok("publish", "bulk", "--batch", file))
	if len(rows) != 1501 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows[1:] {
		if r[6] != "duplicate" {
			t.Fatalf("row %q", r)
		}
	}
	if s := okJSON[api.Store](c, "stores", "bulk"); s.LastSeq != 1501 || s.Events != 1501 {
		t.Fatalf("store after the repeat: %+v", s)
	}
	// A batch the server refuses (a bad id) stores nothing.
	r = c.runIn(opts{stdin: "{\"type\":\"t\"}\n{\"type\":\"t\",\"id\":\"bad id!\"}\n"}, "publish", "bulk", "--batch", "-")
	wantAPIError(t, r, "invalid_event")
	if s := okJSON[api.Store](c, "stores", "bulk"); s.LastSeq != 1501 {
		t.Fatalf("a refused batch stored events: %+v", s)
	}
}

// follower is a running herald events --follow.
type follower struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *strings.Builder
}

func startFollow(t *testing.T, args ...string) *follower {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	cmd.Env = baseEnv(nil)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, lines: make(chan string, 100), stderr: &strings.Builder{}}
	cmd.Stderr = &syncWriter{w: f.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(f.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return f
}

// next is the next line of output, within 30s.
func (f *follower) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			t.Fatalf("follow ended; stderr: %s", f.stderr)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("no line from follow within 30s; stderr: %s", f.stderr)
	}
	return ""
}

// wait waits for the process to exit and returns its status.
func (f *follower) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for range f.lines {
		}
		done <- f.cmd.Wait()
	}()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("follow did not exit within 30s")
	}
	return -1
}

// TestFollow: --follow prints the events after --after, then each new one
// as it is published; SIGINT ends it with status 0. With --limit it stops
// by itself after that many (matching) events.
func TestFollow(t *testing.T) {
	_, c := singleNode(t)
	c.ok("publish", "live", "t/one")
	c.ok("publish", "live", "t/two")

	f := startFollow(t, "events", "live", "--follow", "-o", "json", "--addr", c.addr)
	for want := uint64(1); want <= 2; want++ {
		if e := decodeOne[api.Event](t, f.next(t)); e.Seq != want {
			t.Fatalf("line %d: %+v", want, e)
		}
	}
	pub := okJSON[api.Event](c, "publish", "live", "t/three", "--data", `{"n":3}`)
	line := f.next(t)
	if want := string(pub.AppendJSON(nil)); line != want {
		t.Fatalf("followed %s\nwant %s", line, want)
	}
	if err := f.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(t); code != 0 || f.stderr.String() != "" {
		t.Fatalf("after SIGINT: exit %d, stderr %q", code, f.stderr)
	}

	// Table mode, a type filter and --limit: it exits after one event.
	f = startFollow(t, "events", "live", "--follow", "--after", "3", "--type", "keep/*", "--limit", "1", "--addr", c.addr)
	if h := strings.Fields(f.next(t)); strings.Join(h, " ") != "SEQ ID TYPE VERSION TIMESTAMP DATA" {
		t.Fatalf("header %q", h)
	}
	c.ok("publish", "live", "skip/me")
	kept := okJSON[api.Event](c, "publish", "live", "keep/me", "--data", `"yes"`)
	row := strings.Fields(f.next(t))
	if len(row) != 6 || row[0] != "5" || row[1] != kept.ID || row[2] != "keep/me" || row[5] != `"yes"` {
		t.Fatalf("row %q", row)
	}
	if code := f.wait(t); code != 0 {
		t.Fatalf("--limit 1: exit %d, stderr %q", code, f.stderr)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestStores covers herald stores (list, one), set-retention and back to
// the default, and an API error.
func TestStores(t *testing.T) {
	_, c := singleNode(t)
	if r := c.run("stores"); r.code != 0 || r.stdout != "" || r.stderr != "no stores\n" {
		t.Fatalf("no stores:\n%s", r)
	}
	if l := okJSON[api.StoreList](c, "stores"); l.Stores == nil || len(l.Stores) != 0 {
		t.Fatalf("no stores in JSON: %+v", l)
	}
	c.ok("publish", "plant-b", "t")
	c.ok("publish", "shop-a", "t")
	c.ok("publish", "shop-a", "t")

	rows := tableRows(c.ok("stores"))
	if len(rows) != 3 || rows[0][0] != "STORE" || rows[1][0] != "plant-b" || rows[2][0] != "shop-a" || rows[2][2] != "2" || rows[2][3] != "2" || rows[2][5] != "none" {
		t.Fatalf("stores table: %q", rows)
	}
	list := okJSON[api.StoreList](c, "stores")
	if len(list.Stores) != 2 || list.Stores[1].Store != "shop-a" || list.Stores[1].LastSeq != 2 || len(list.Stores[1].HeadHash) != 64 {
		t.Fatalf("stores JSON: %+v", list)
	}
	one := okJSON[api.Store](c, "stores", "shop-a")
	if one.LastSeq != 2 || one.FirstSeq != 1 || one.HeadHash != list.Stores[1].HeadHash || one.Retention != nil {
		t.Fatalf("store JSON: %+v", one)
	}
	if out := c.ok("stores", "shop-a"); !strings.Contains(out, "head hash: "+one.HeadHash+"\n") || !strings.Contains(out, "last seq:  2\n") {
		t.Fatalf("store block:\n%s", out)
	}

	if out := c.ok("stores", "set-retention", "shop-a", "--max-age", "2h", "--max-events", "10"); out != "store shop-a: retention max age 2h, max 10 events\n" {
		t.Fatalf("set-retention: %q", out)
	}
	sr := okJSON[api.StoreRetention](c, "stores", "set-retention", "shop-a", "--max-events", "20")
	if sr.Store != "shop-a" || sr.Retention == nil || sr.Retention.MaxEvents != 20 || sr.Retention.MaxAge != "" {
		t.Fatalf("set-retention JSON: %+v", sr)
	}
	if s := okJSON[api.Store](c, "stores", "shop-a"); s.Retention == nil || s.Retention.MaxEvents != 20 {
		t.Fatalf("store after set-retention: %+v", s)
	}
	sr = okJSON[api.StoreRetention](c, "stores", "set-retention", "shop-a")
	if sr.Retention != nil {
		t.Fatalf("back to the default: %+v", sr.Retention)
	}
	if s := okJSON[api.Store](c, "stores", "shop-a"); s.Retention != nil {
		t.Fatalf("store after going back to the default: %+v", s.Retention)
	}
	wantAPIError(t, c.run("stores", "nosuch"), "not_found")
	wantAPIError(t, c.run("stores", "set-retention", "shop-a", "--max-age", "1s"), "invalid_retention")
}

// TestOpenAPI: herald openapi prints the node's document as served, or on
// one line with -o json.
func TestOpenAPI(t *testing.T) {
	n, c := singleNode(t)
	served := rawGet(t, "http://"+n.HTTPAddr()+"/v1/openapi.json")
	if out := c.ok("openapi"); strings.TrimRight(out, "\n") != strings.TrimRight(string(served), "\n") {
		t.Fatalf("openapi differs from GET /v1/openapi.json (%d and %d bytes)", len(out), len(served))
	}
	doc := okJSON[struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}](c, "openapi")
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Paths["/v1/stores/{store}/events"] == nil {
		t.Fatalf("openapi -o json: version %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
}
