package systemtest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/testutil"
)

// TestAuthAgainstProcesses: three herald serve processes, auth on as
// shipped. A store key publishes through a follower and may do nothing
// else; requests without a key, forms and foreign origins are refused; a
// revoked key is refused by every process within a second; a plain TCP
// connection to a cluster port is dropped.
func TestAuthAgainstProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs herald processes")
	}
	c := startCluster(t, 3)
	l := c.leader()
	var f *node
	for _, n := range c.nodes {
		if n != l {
			f = n
		}
	}
	ctx := context.Background()
	k, err := apiOf(l.http).CreateKey(ctx, api.KeyRequest{Name: "checkout", Grants: []api.Grant{{Stores: []string{"shop-*"}, Actions: []api.Action{api.ActionPublish}}}})
	if err != nil {
		t.Fatal(err)
	}
	status := func(n *node, method, path, key, ctype, body string, hdr ...string) int {
		req, _ := http.NewRequest(method, "http://"+n.http+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, n := range c.nodes {
		n := n
		testutil.WaitFor(t, 10*time.Second, n.id+" knows the key", func() bool {
			return status(n, "GET", "/v1/openapi.json", k.Key, "", "") == 200
		})
	}
	ev := `{"type":"store/order/created","data":{"order":1}}`
	for _, tc := range []struct {
		what                     string
		method, path, key, ctype string
		body                     string
		hdr                      []string
		want                     int
	}{
		{"publish through a follower", "POST", "/v1/stores/shop-1/events", k.Key, "application/json", ev, nil, 201},
		{"read with a publish key", "GET", "/v1/stores/shop-1/events", k.Key, "", "", nil, 403},
		{"another store", "POST", "/v1/stores/plant-1/events", k.Key, "application/json", ev, nil, 403},
		{"backup", "GET", "/v1/backup", k.Key, "", "", nil, 403},
		{"no key", "POST", "/v1/stores/shop-1/events", "", "application/json", ev, nil, 401},
		{"a form", "POST", "/v1/stores/shop-1/events", k.Key, "application/x-www-form-urlencoded", ev, nil, 415},
		{"a foreign page", "POST", "/v1/stores/shop-1/events", k.Key, "application/json", ev, []string{"Origin", "https://evil.example"}, 403},
		{"a rebound DNS name", "GET", "/v1/stores", k.Key, "", "", []string{"Host", "evil.example"}, 403},
	} {
		if tc.hdr != nil && tc.hdr[0] == "Host" {
			req, _ := http.NewRequest(tc.method, "http://"+f.http+tc.path, nil)
			req.Host = tc.hdr[1]
			req.Header.Set("Authorization", "Bearer "+tc.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d", tc.what, resp.StatusCode, tc.want)
			}
			continue
		}
		if got := status(f, tc.method, tc.path, tc.key, tc.ctype, tc.body, tc.hdr...); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.what, got, tc.want)
		}
	}
	// Exactly one event reached the store: the refused requests changed
	// nothing.
	st, err := apiOf(l.http).Store(ctx, "shop-1", nil)
	if err != nil || st.LastSeq != 1 {
		t.Fatalf("shop-1 after the refusals: %+v %v", st, err)
	}

	// Plain TCP to a cluster port, as a Raft peer without TLS would talk,
	// is dropped.
	raw, err := net.Dial("tcp", f.proxy.addr())
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0x85, 0xa4, 'T', 'e', 'r', 'm', 100})
	raw.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Error("a cluster port answered plain TCP")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a cluster port kept a plain TCP connection open")
	}
	raw.Close()

	// /v1/openapi.json is answered by each process itself (a leader-level
	// read would be relayed, and the leader refuse the key for it).
	start := time.Now()
	if err := apiOf(l.http).RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		n := n
		testutil.WaitFor(t, 5*time.Second, n.id+" refuses the revoked key", func() bool {
			return status(n, "GET", "/v1/openapi.json", k.Key, "", "") == 401
		})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("revocation reached every process in %v, want under 1s", d)
	} else {
		t.Logf("revoked and refused by all three processes %v later", d.Round(time.Millisecond))
	}
	var list api.KeyList
	keys, err := apiOf(f.http).Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list.Keys = keys
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), k.Key) || strings.Contains(string(b), k.ID) {
		t.Errorf("the revoked key is still listed: %s", b)
	}
}
