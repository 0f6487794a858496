package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer for a logger that several goroutines use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLogAndRequestIDs: every request gets a request id (the
// client's when valid, else a new one) in its answer, and one access log
// line with its route pattern, status, duration and key id, never the
// key.
func TestAccessLogAndRequestIDs(t *testing.T) {
	var buf syncBuffer
	f := newFake(t)
	srv, admin := newAuthServer(t, f, WithAccessLog(slog.New(slog.NewJSONHandler(&buf, nil))))
	r := do(t, srv, "POST", "/v1/stores/shop-1/events", `{"type":"t","data":1}`, append(bearer(admin), "X-Request-Id", "checkout-42:a")...)
	if r.status != 201 || r.header.Get("X-Request-Id") != "checkout-42:a" {
		t.Fatalf("publish: %d, request id %q", r.status, r.header.Get("X-Request-Id"))
	}
	r = do(t, srv, "GET", "/v1/stores/shop-1/events/nope", "", append(bearer(admin), "X-Request-Id", "not valid!")...)
	made := r.header.Get("X-Request-Id")
	if r.status != 404 || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(made) {
		t.Fatalf("an invalid request id was not replaced: %d %q", r.status, made)
	}
	do(t, srv, "GET", "/v1/nowhere", "")
	lines := buf.lines()
	if len(lines) != 3 {
		t.Fatalf("%d access log lines: %v", len(lines), lines)
	}
	want := []struct {
		route, id string
		status    float64
		key       bool
	}{{"/v1/stores/:store/events", "checkout-42:a", 201, true}, {"/v1/stores/:store/events/:id", made, 404, true}, {"-", "", 404, false}}
	for i, w := range want {
		l := lines[i]
		if l["route"] != w.route || l["status"] != w.status || (w.id != "" && l["request_id"] != w.id) || l["duration_ms"] == nil {
			t.Errorf("line %d: %v", i, l)
		}
		if _, ok := l["key"]; ok != w.key || (ok && !strings.HasPrefix(l["key"].(string), "key_")) {
			t.Errorf("line %d key: %v", i, l["key"])
		}
	}
	buf.mu.Lock()
	leaked := strings.Contains(buf.b.String(), admin)
	buf.mu.Unlock()
	if leaked {
		t.Fatal("the access log holds the API key")
	}
}

// TestMetricsRoute: /metrics needs a key unless public.
func TestMetricsRoute(t *testing.T) {
	f := newFake(t)
	srv, admin := newAuthServer(t, f)
	if r := do(t, srv, "GET", "/metrics", ""); r.status != 401 {
		t.Fatalf("without a key: %d", r.status)
	}
	if r := do(t, srv, "GET", "/metrics", "", bearer(admin)...); r.status != 200 || !strings.Contains(string(r.body), "herald_fake_total 1") {
		t.Fatalf("with a key: %d %s", r.status, r.body)
	}
	pub, _ := newAuthServer(t, newFake(t), WithMetricsPublic())
	if r := do(t, pub, "GET", "/metrics", ""); r.status != 200 {
		t.Fatalf("public, without a key: %d", r.status)
	}
}
