package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// eventsOnly implements EventService and nothing else: an API over it
// serves the event routes, and the routes of the other roles do not exist.
type eventsOnly struct{ got []PublishRequest }

func (e *eventsOnly) Publish(ctx context.Context, req PublishRequest) ([]hlog.Appended, error) {
	e.got = append(e.got, req)
	out := make([]hlog.Appended, len(req.Events))
	for i, ev := range req.Events {
		out[i] = hlog.Appended{Event: hlog.Event{ID: fmt.Sprintf("evt_%d", i), Store: req.Store, Seq: uint64(i + 1), Type: ev.Type,
			Timestamp: time.Now().UTC(), Version: "1", Data: ev.Data, Hash: strings.Repeat("ab", 32)}}
	}
	return out, nil
}

func (e *eventsOnly) Read(ctx context.Context, req ReadRequest) ([]hlog.Event, uint64, error) {
	return nil, req.Options.After, nil
}

func (e *eventsOnly) Get(ctx context.Context, store, id string, c api.Consistency) (hlog.Event, error) {
	return hlog.Event{}, fmt.Errorf("%w: %s", hlog.ErrEventNotFound, id)
}

func TestServicesByRole(t *testing.T) {
	svc := &eventsOnly{}
	a := New(Services{Events: svc}, quiet())
	srv := httptest.NewServer(a)
	defer srv.Close()
	r := do(t, srv, "POST", "/v1/stores/shop/events", `{"type":"t","data":{"k": 1}}`, "Idempotency-Key", "k1")
	if r.status != 201 || !strings.Contains(string(r.body), `"data":{"k": 1}`) {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	if len(svc.got) != 1 || svc.got[0].Events[0].IdempotencyKey != "k1" || svc.got[0].Store != "shop" {
		t.Fatalf("the service got %+v", svc.got)
	}
	if r := do(t, srv, "GET", "/v1/stores/shop/events/x", ""); r.status != 404 || errCode(t, r.body) != "not_found" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	// (Plain requests: a node always serves these routes, so the OpenAPI
	// document, which the tests' client checks answers against, has no 404
	// for some of them.)
	for _, path := range []string{"/v1/cluster", "/v1/stores", "/v1/stores/shop/subscriptions", "/v1/backup", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s without its service: %d", path, resp.StatusCode)
		}
	}
	var routes []string
	for _, rt := range a.Routes() {
		routes = append(routes, rt.Method+" "+rt.Path)
	}
	want := "GET /healthz,GET /v1/openapi.json,GET /v1/self,POST /v1/stores/{store}/events,GET /v1/stores/{store}/events,GET /v1/stores/{store}/events/{id},GET /v1/stores/{store}/events/stream"
	if strings.Join(routes, ",") != want {
		t.Fatalf("routes %v", routes)
	}
}

// TestStoreNameCheckedOnEveryRoute: a malformed store is invalid_store on
// every route that has one, before any service sees it.
func TestStoreNameCheckedOnEveryRoute(t *testing.T) {
	f := newFake(t)
	a := New(All(f), quiet())
	srv := httptest.NewServer(a)
	defer srv.Close()
	n := 0
	for _, rt := range a.Routes() {
		if !strings.Contains(rt.Path, "{store}") {
			continue
		}
		n++
		path := strings.NewReplacer("{store}", "BAD!", "{id}", "x", "{event_id}", "y").Replace(rt.Path)
		r := do(t, srv, rt.Method, path, `{}`)
		if r.status != 400 || errCode(t, r.body) != "invalid_store" {
			t.Errorf("%s %s: %d %s", rt.Method, path, r.status, r.body)
		}
	}
	if n < 18 {
		t.Fatalf("only %d routes with a store", n)
	}
}

// TestErrorMessagesDoNotRepeatTheCode: the code says what the sentinel
// says, so an answer's message starts after it.
func TestErrorMessagesDoNotRepeatTheCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: n1 is the leader; transfer leadership first", ErrConflict), "n1 is the leader; transfer leadership first"},
		{fmt.Errorf("%w: %w", ErrNotLeader, errors.New("not the leader")), "not the leader"},
		{fmt.Errorf("%w: server not found: n9", ErrNotFound), "server not found: n9"},
		{fmt.Errorf("%w: url must be http or https", hlog.ErrInvalidSubscription), "url must be http or https"},
		{fmt.Errorf("join via x: %w", ErrConflict), "join via x: conflict"},
		{ErrConflict, "conflict"},
	} {
		rec := httptest.NewRecorder()
		New(Services{}, quiet()).writeError(rec, httptest.NewRequest("GET", "/", nil), tc.err)
		var body api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Message != tc.want {
			t.Errorf("%v: message %q, want %q", tc.err, body.Error.Message, tc.want)
		}
	}
}
