package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// bodyRoutes are the routes that read a JSON body, with a valid body each
// (the seeds).
var bodyRoutes = []struct{ method, path, seed string }{
	{"POST", "/v1/stores/s/events", `{"type":"store/order/created","data":{"order":1}}`},
	{"POST", "/v1/stores/s/events", `{"events":[{"type":"a","data":1},{"id":"e2","type":"b","version":"2","data":null}]}`},
	{"PUT", "/v1/stores/s", `{"retention":{"max_age":"720h","max_events":1000}}`},
	{"POST", "/v1/stores/s/subscriptions", `{"url":"http://127.0.0.1:9/h","types":["a/*"],"headers":{"X-A":"1"},"sensitive_headers":["X-A"],"retry_schedule":["1s"],"timeout":"5s"}`},
	{"PATCH", "/v1/stores/s/subscriptions/sub_1", `{"max_in_flight":4,"enabled":false}`},
	{"POST", "/v1/stores/s/subscriptions/sub_1/secret/rotate", `{"grace":"1h"}`},
	{"POST", "/v1/stores/s/subscriptions/sub_1/replay", `{"from_seq":1,"only":"dead"}`},
	{"POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"127.0.0.1:8091","http_addr":"127.0.0.1:8090","voter":false}`},
	{"POST", "/v1/cluster/leader/transfer", `{"to":"n2"}`},
	{"POST", "/v1/keys", `{"name":"ci","grants":[{"stores":["shop-*"],"actions":["publish"]}]}`},
	{"POST", "/v1/cluster/tokens", `{"ttl":"1h"}`},
}

// FuzzRouteBodies sends arbitrary bodies to every route that reads one:
// the answer is never a 500, and every error is the JSON error shape
// with a code whose status is the answer's, and a bounded message.
func FuzzRouteBodies(f *testing.F) {
	for i, r := range bodyRoutes {
		f.Add(uint8(i), []byte(r.seed))
	}
	f.Add(uint8(0), []byte(`{"type":"\xff","data":1}`))
	f.Add(uint8(3), []byte(`{"url":"http://127.0.0.1/","headers":{"A":"\u0001"}}`))
	f.Add(uint8(9), []byte(`[]`))
	svc := &fakeService{db: testutil.TempDB(f)}
	h := New(All(svc), quiet())
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := bodyRoutes[int(route)%len(bodyRoutes)]
		req := httptest.NewRequest(r.method, r.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, w.Code, w.Body)
		}
		if w.Code < 400 {
			return
		}
		var e api.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !e.Error.Code.Known() || e.Error.Code.Status() != w.Code {
			t.Fatalf("%s %s %q: %d with body %s", r.method, r.path, body, w.Code, w.Body)
		}
		if len(e.Error.Message) > maxMessage+3 {
			t.Fatalf("a message of %d bytes", len(e.Error.Message))
		}
		if w.Code == http.StatusMethodNotAllowed {
			t.Fatalf("%s %s is not a route", r.method, r.path)
		}
	})
}
