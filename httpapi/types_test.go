package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	hlog "github.com/herald-io/herald/log"
)

// TestStoreTypes: GET /v1/stores/{store}/types lists the store's types by
// name with counts (a deduplicated publish not counted) and the newest
// event's seq and timestamp; an unknown store gets exactly the answer GET
// /v1/stores/{store} gives; consistency is the store route's. Every
// exchange is checked against the OpenAPI document (checkedTransport).
func TestStoreTypes(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	do(t, srv, "POST", "/v1/stores/shop-1/events", `{"events":[{"id":"e1","type":"order.created","data":1},{"id":"e2","type":"order.paid","data":2},{"id":"e3","type":"order.created","data":3}]}`)
	if r := do(t, srv, "POST", "/v1/stores/shop-1/events", `{"id":"e1","type":"order.created","data":1}`); r.status != 200 {
		t.Fatalf("duplicate: %d %s", r.status, r.body)
	}
	e3, err := f.db.Get("shop-1", "e3")
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := f.db.Get("shop-1", "e2")

	r := do(t, srv, "GET", "/v1/stores/shop-1/types", "")
	want := fmt.Sprintf(`{"store":"shop-1","types":[{"type":"order.created","count":2,"last_seen_at":%q,"last_seq":3},{"type":"order.paid","count":1,"last_seen_at":%q,"last_seq":2}],"truncated":false}`+"\n",
		e3.Timestamp.Format(time.RFC3339Nano), e2.Timestamp.Format(time.RFC3339Nano))
	if r.status != 200 || string(r.body) != want {
		t.Fatalf("types: %d\n got %s\nwant %s", r.status, r.body, want)
	}
	var st api.StoreTypes
	if err := json.Unmarshal(r.body, &st); err != nil || !st.Types[0].LastSeenAt.Equal(e3.Timestamp) {
		t.Fatalf("decoded %+v %v", st, err)
	}

	// An unknown store: the store route's answer, byte for byte.
	unknownStore := do(t, srv, "GET", "/v1/stores/nope", "")
	unknownTypes := do(t, srv, "GET", "/v1/stores/nope/types", "")
	if unknownTypes.status != 404 || unknownTypes.status != unknownStore.status || !bytes.Equal(unknownTypes.body, unknownStore.body) {
		t.Fatalf("unknown store: types %d %s; store %d %s", unknownTypes.status, unknownTypes.body, unknownStore.status, unknownStore.body)
	}
	for _, c := range []string{"local", "leader", "linearizable"} {
		if r := do(t, srv, "GET", "/v1/stores/shop-1/types?consistency="+c, ""); r.status != 200 || string(r.body) != want {
			t.Errorf("consistency=%s: %d %s", c, r.status, r.body)
		}
	}
	if r := do(t, srv, "GET", "/v1/stores/shop-1/types?consistency=weird", ""); r.status != 400 || errCode(t, r.body) != "invalid_parameter" {
		t.Errorf("bad consistency: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "GET", "/v1/stores/Shop/types", ""); r.status != 400 || errCode(t, r.body) != "invalid_store" {
		t.Errorf("bad store: %d %s", r.status, r.body)
	}
	if r := do(t, srv, "POST", "/v1/stores/shop-1/types", `{}`); r.status != 405 || errCode(t, r.body) != "method_not_allowed" {
		t.Errorf("POST: %d %s", r.status, r.body)
	}
}

// TestStoreTypesTruncatedAndCompacted: past hlog.MaxTypesPerStore types
// the answer lists the first ones and says truncated; retention lowers
// the counts.
func TestStoreTypesTruncatedAndCompacted(t *testing.T) {
	f := newFake(t)
	srv := newServer(t, f)
	var b strings.Builder
	for i := range hlog.MaxTypesPerStore + 1 {
		if i%api.MaxBatchEvents == 0 {
			if b.Len() > 0 {
				b.WriteString(`]}`)
				do(t, srv, "POST", "/v1/stores/many/events", b.String())
			}
			b.Reset()
			b.WriteString(`{"events":[`)
		} else {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"t/%04d","data":null}`, i)
	}
	b.WriteString(`]}`)
	do(t, srv, "POST", "/v1/stores/many/events", b.String())
	var st api.StoreTypes
	r := do(t, srv, "GET", "/v1/stores/many/types", "")
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(st.Types) != hlog.MaxTypesPerStore || !st.Truncated || st.Types[0].Type != "t/0000" || st.Types[len(st.Types)-1].Type != "t/0999" {
		t.Fatalf("past the bound: %d types, truncated %v", len(st.Types), st.Truncated)
	}

	do(t, srv, "POST", "/v1/stores/shop/events", `{"events":[{"type":"a","data":1},{"type":"b","data":2},{"type":"a","data":3}]}`)
	if err := f.db.Update(func(tx *hlog.Tx) error { _, err := tx.Compact("shop", 2); return err }); err != nil {
		t.Fatal(err)
	}
	r = do(t, srv, "GET", "/v1/stores/shop/types", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"types":[{"type":"a","count":1,`) || strings.Contains(string(r.body), `"type":"b"`) {
		t.Fatalf("after compaction: %d %s", r.status, r.body)
	}
}

// TestStoreTypesPermissionAndRelay: reading types needs read on the
// store, as reading its events does; a follower relays a leader-level
// read and answers a local one itself.
func TestStoreTypesPermissionAndRelay(t *testing.T) {
	f := newFake(t)
	srv, admin := newAuthServer(t, f)
	do(t, srv, "POST", "/v1/stores/shop-1/events", `{"type":"a","data":1}`, bearer(admin)...)
	do(t, srv, "POST", "/v1/stores/plant-1/events", `{"type":"a","data":1}`, bearer(admin)...)
	reader, _ := f.CreateKey(t.Context(), api.KeyRequest{Name: "r", Grants: []api.Grant{{Stores: []string{"shop-*"}, Actions: []api.Action{api.ActionRead}}}})
	publisher, _ := f.CreateKey(t.Context(), api.KeyRequest{Name: "p", Grants: []api.Grant{{Stores: []string{"shop-*"}, Actions: []api.Action{api.ActionPublish, api.ActionSubscriptions}}}})
	for _, c := range []struct {
		key, path string
		status    int
	}{
		{reader.Key, "/v1/stores/shop-1/types", 200},
		{reader.Key, "/v1/stores/plant-1/types", 403},
		{publisher.Key, "/v1/stores/shop-1/types", 403},
		{admin, "/v1/stores/plant-1/types", 200},
		{"", "/v1/stores/shop-1/types", 401},
	} {
		var h []string
		if c.key != "" {
			h = bearer(c.key)
		}
		if r := do(t, srv, "GET", c.path, "", h...); r.status != c.status {
			t.Errorf("GET %s with key %.6s…: %d %s, want %d", c.path, c.key, r.status, r.body, c.status)
		}
	}

	leaderSvc := newFake(t)
	leader := newServer(t, leaderSvc)
	followerSvc := newFake(t)
	followerSvc.notLeader = true
	followerSvc.leader = strings.TrimPrefix(leader.URL, "http://")
	follower := newServer(t, followerSvc)
	do(t, leader, "POST", "/v1/stores/fw/events", `{"type":"on.leader","data":1}`)
	if r := do(t, follower, "GET", "/v1/stores/fw/types", ""); r.status != 200 || r.header.Get("Herald-Forwarded-To") != followerSvc.leader || !strings.Contains(string(r.body), `"on.leader"`) {
		t.Fatalf("relayed: %d %v %s", r.status, r.header, r.body)
	}
	if r := do(t, follower, "GET", "/v1/stores/fw/types?consistency=local", ""); r.status != 404 {
		t.Fatalf("a local read was relayed: %d %s", r.status, r.body)
	}
}
