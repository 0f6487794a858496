package httpapi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

// TestQueryPatternLimit: a read names at most api.MaxQueryPatterns type
// patterns (20,000 once made a read 180 times slower).
func TestQueryPatternLimit(t *testing.T) {
	srv := newServer(t, newFake(t))
	pats := make([]string, api.MaxQueryPatterns)
	for i := range pats {
		pats[i] = "t" + strconv.Itoa(i)
	}
	if r := do(t, srv, "GET", "/v1/stores/s/events?type="+strings.Join(pats, ","), ""); r.status != 200 {
		t.Fatalf("%d patterns: %d %s", len(pats), r.status, r.body)
	}
	pats = append(pats, "one-more")
	r := do(t, srv, "GET", "/v1/stores/s/events?type="+strings.Join(pats[:32], ",")+"&type="+strings.Join(pats[32:], ","), "")
	if r.status != 400 || errCode(t, r.body) != "invalid_parameter" || !strings.Contains(string(r.body), "at most 64 patterns") {
		t.Fatalf("%d patterns: %d %s", len(pats), r.status, r.body)
	}
}

// TestHugeInputsGetShortJSONErrors: a request line or headers over
// api.MaxHeaderBytes get a JSON 431; an error never echoes more than a
// few hundred bytes of a large input.
func TestHugeInputsGetShortJSONErrors(t *testing.T) {
	srv := newServer(t, newFake(t))
	long := strings.Repeat("x", 100<<10)
	r := do(t, srv, "GET", "/v1/stores/s/events?after="+long, "")
	if r.status != 431 || errCode(t, r.body) != "headers_too_large" || len(r.body) > 500 {
		t.Fatalf("a 100 KiB URL: %d %.300s", r.status, r.body)
	}
	r = do(t, srv, "GET", "/v1/stores", "", "X-Big", long)
	if r.status != 431 || errCode(t, r.body) != "headers_too_large" {
		t.Fatalf("a 100 KiB header: %d %.300s", r.status, r.body)
	}
	mid := strings.Repeat("y", 20<<10) // under the header limit, over every field's
	for _, c := range []struct{ method, path, body, code string }{
		{"GET", "/v1/stores/" + mid + "/events", "", "invalid_store"},
		{"GET", "/v1/stores/s/events?type=" + mid, "", "invalid_parameter"},
		{"GET", "/v1/stores/s/events/" + mid, "", "not_found"},
		{"POST", "/v1/stores/s/events", `{"type":"` + mid + `","data":1}`, "invalid_event"},
		{"POST", "/v1/stores/s/subscriptions", `{"url":"http://127.0.0.1/` + mid + `"}`, "invalid_subscription"},
	} {
		r := do(t, srv, c.method, c.path, c.body)
		if errCode(t, r.body) != c.code || len(r.body) > 600 {
			t.Errorf("%s %.40s…: %d, %d bytes: %.200s", c.method, c.path, r.status, len(r.body), r.body)
		}
	}
}
