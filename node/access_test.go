package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// accessLines returns the access log lines of the nodes logging to l.
func (l *lockedBuffer) accessLines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["subsystem"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// TestRequestIDIsPassedOn: a publish sent to a follower with a request
// id is forwarded to the leader with it, so both nodes' access logs name
// it, the leader's with the follower as the node it came from.
func TestRequestIDIsPassedOn(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nodes := mustStartCluster(t, 2, func(c *Config) { c.AccessLog, c.Logger = true, logger })
	l := leaderOf(t, nodes)
	f := nodes[0]
	if f == l {
		f = nodes[1]
	}
	req, err := http.NewRequest("POST", "http://"+f.HTTPAddr()+"/v1/stores/shop/events", strings.NewReader(`{"type":"t","data":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "trace-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Request-Id") != "trace-7" {
		t.Fatalf("publish through the follower: %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	waitFor(t, 10*time.Second, "both access log lines", func() bool {
		seen := map[string]map[string]any{}
		for _, m := range buf.accessLines() {
			if m["request_id"] == "trace-7" {
				seen[m["node"].(string)] = m
			}
		}
		lm, fm := seen[l.ID()], seen[f.ID()]
		return lm != nil && fm != nil && lm["from_node"] == f.ID() && lm["status"] == float64(201) && fm["route"] == "/v1/stores/:store/events"
	})
}
