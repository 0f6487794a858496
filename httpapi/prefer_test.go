package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPublishPreferMinimal: with Prefer: return=minimal a publish answer
// leaves the events' data out (and says so); without it, data is there.
func TestPublishPreferMinimal(t *testing.T) {
	srv := newServer(t, newFake(t))
	r := do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"t","data":{"big":"`+strings.Repeat("x", 100)+`"}}`, "Prefer", "respond-async, return=minimal")
	var ev map[string]json.RawMessage
	if r.status != 201 || json.Unmarshal(r.body, &ev) != nil || ev["data"] != nil || string(ev["seq"]) != "1" || len(ev["hash"]) != 66 ||
		r.header.Get("Preference-Applied") != "return=minimal" || r.header.Get("Location") == "" {
		t.Fatalf("single: %d %v %s", r.status, r.header, r.body)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"type":"t","data":1},{"id":"x","type":"t","data":2}]}`, "Prefer", "return=minimal")
	var page struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	if r.status != 201 || json.Unmarshal(r.body, &page) != nil || len(page.Events) != 2 || page.Events[1]["data"] != nil || string(page.Events[1]["id"]) != `"x"` {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	r = do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"t","data":3}`, "Prefer", "return=representation")
	if r.status != 201 || !strings.Contains(string(r.body), `"data":3`) || r.header.Get("Preference-Applied") != "" {
		t.Fatalf("other preference: %d %v %s", r.status, r.header, r.body)
	}
}
