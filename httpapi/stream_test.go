package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseMessage is one message of an event stream.
type sseMessage struct{ id, event, data, comment string }

// readSSE reads messages from an event stream until n have come.
func readSSE(t *testing.T, sc *bufio.Scanner, n int) []sseMessage {
	t.Helper()
	var out []sseMessage
	var m sseMessage
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, m)
			m = sseMessage{}
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
	if len(out) < n {
		t.Fatalf("the stream ended after %d messages: %v", len(out), sc.Err())
	}
	return out
}

// TestEventStream: the stream sends every event after Last-Event-ID (or
// after=) as id/event/data, a heartbeat comment while idle, and events
// published while it is open; the id "stream" cannot be published.
func TestEventStream(t *testing.T) {
	f := newFake(t)
	srv := newServerWith(t, f, WithStreamHeartbeat(50*time.Millisecond))
	for _, typ := range []string{"a.one", "b.two", "a.three"} {
		if r := do(t, srv, "POST", "/v1/stores/s/events", `{"type":"`+typ+`","data":1}`); r.status != 201 {
			t.Fatalf("publish: %d %s", r.status, r.body)
		}
	}
	if r := do(t, srv, "POST", "/v1/stores/s/events", `{"id":"stream","type":"t","data":1}`); r.status != 400 || errCode(t, r.body) != "invalid_event" {
		t.Fatalf("publish with id stream: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(testContext(t), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/stores/s/events/stream?type=a.*", nil)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	msgs := readSSE(t, sc, 1) // the opening comment
	if msgs[0].comment == "" {
		t.Fatalf("first message %+v", msgs[0])
	}
	msgs = readSSE(t, sc, 2)
	if msgs[0].id != "1" || msgs[0].event != "a.one" || msgs[1].id != "3" || msgs[1].event != "a.three" || !strings.Contains(msgs[1].data, `"seq":3`) {
		t.Fatalf("events %+v", msgs)
	}
	if m := readSSE(t, sc, 1)[0]; m.comment != "heartbeat" {
		t.Fatalf("idle: %+v", m)
	}
	if r := do(t, srv, "POST", "/v1/stores/s/events", `{"type":"a.four","data":1}`); r.status != 201 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	for {
		m := readSSE(t, sc, 1)[0]
		if m.comment == "heartbeat" {
			continue
		}
		if m.id != "4" || m.event != "a.four" {
			t.Fatalf("live event %+v", m)
		}
		break
	}
	// Resuming: Last-Event-ID wins over after=.
	req2, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/stores/s/events/stream?after=0", nil)
	req2.Header.Set("Last-Event-ID", "3")
	resp2, err := testClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc2 := bufio.NewScanner(resp2.Body)
	if m := readSSE(t, sc2, 2)[1]; m.id != "4" {
		t.Fatalf("resumed at %+v", m)
	}
	if r := do(t, srv, "GET", "/v1/stores/s/events/stream", "", "Last-Event-ID", "x"); r.status != 400 || errCode(t, r.body) != "invalid_parameter" {
		t.Fatalf("a bad Last-Event-ID: %d %s", r.status, r.body)
	}
}
