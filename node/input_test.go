package node

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// TestHostileInput: what a node refuses before it proposes anything.
func TestHostileInput(t *testing.T) {
	n := mustStartCluster(t, 1, nil)[0]
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		// encoding/json accepts invalid UTF-8 in strings; it was stored and
		// delivered.
		{"data not UTF-8", "POST", "/v1/stores/s/events", "{\"type\":\"t\",\"data\":\"\xff\xfe\"}", 400},
		// after+1 overflowed into a 410.
		{"after past any seq", "GET", "/v1/stores/s/events?after=18446744073709551615", "", 400},
		{"a header value with \\x01", "POST", "/v1/stores/s/subscriptions", `{"url":"http://127.0.0.1:9/x","headers":{"X-A":"a\u0001b"}}`, 400},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+n.HTTPAddr()+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if _, err := n.DB().Store("s"); err == nil {
		t.Fatal("a refused request created the store")
	}
}

// TestHugeURLGetsAJSON431: a 1.1 MB URL (once net/http's plain-text 431)
// gets the API's JSON error.
func TestHugeURLGetsAJSON431(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/stores/s/events?type=" + strings.Repeat("a", 1100<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 431 || e.Error.Code != api.CodeHeadersTooLarge {
		t.Fatalf("%d %q %+v %v", resp.StatusCode, resp.Header.Get("Content-Type"), e, err)
	}
}
