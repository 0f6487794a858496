package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// TestHostileReceiverIsBounded: a receiver answering with 32 headers
// whose names are 100 KB each (which once stored 3 MB in one attempt),
// or 100 headers of ~500 bytes, or a long body, cannot
// make an attempt record hold more than MaxRecordedResponse bytes of
// what it sent.
func TestHostileReceiverIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"32 names of 100 KB", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 32; i++ {
				w.Header().Set(strings.Repeat(string(rune('a'+i%26)), 100<<10)+string(rune('a'+i/26)), "v")
			}
			w.WriteHeader(200)
		}},
		{"100 headers of 254-byte names and 256-byte values (under the transport's limit)", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 100; i++ {
				w.Header().Set(strings.Repeat("x", 250)+strings.Repeat(string(rune('a'+i%26)), 3)+string(rune('a'+i/26)), strings.Repeat("v", 256))
			}
			w.WriteHeader(200)
		}},
		{"a 1 MB body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write([]byte(strings.Repeat("b", 1<<20)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			s := NewSender(SenderConfig{})
			defer s.Close()
			sub := &hlog.Subscription{ID: "sub_1", URL: srv.URL, Timeout: 10 * time.Second}
			ev := &hlog.Event{ID: "evt_1", Store: "s", Seq: 1, Type: "t", Data: []byte(`{}`)}
			a, _, err := s.Send(context.Background(), sub, [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, ev, []byte(`{}`), 1)
			if err != nil {
				t.Fatal(err)
			}
			size := len(a.ResponseBody) + len(a.Error)
			for _, kv := range a.ResponseHeaders {
				size += len(kv[0]) + len(kv[1])
			}
			if size > MaxRecordedResponse {
				t.Fatalf("the receiver put %d bytes into one attempt (limit %d)", size, MaxRecordedResponse)
			}
			if len(a.ResponseHeaders) == 0 && a.Error == "" && a.Status == 0 {
				t.Fatal("nothing recorded at all")
			}
			t.Logf("%d bytes recorded: status %d, %d headers, body %d, error %.80q", size, a.Status, len(a.ResponseHeaders), len(a.ResponseBody), a.Error)
		})
	}
}
