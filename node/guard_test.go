package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// fakeResolver answers host names from a table; a name it does not know
// does not resolve. No query leaves the process.
type fakeResolver struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

func (f *fakeResolver) set(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	f.m[host] = as
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if as, ok := f.m[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.53.53.53:53", IsNotFound: true}
}

func apiCode(err error) api.ErrorCode {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// TestDeliveryGuard: without --delivery-allow, a subscription cannot be
// aimed at a loopback receiver, not by a literal, not by a name, not by a
// name that resolves there only when it is dialled; the refused dial is a
// failed attempt worded without the address; and Herald's own API is
// refused even when loopback is allowed.
func TestDeliveryGuard(t *testing.T) {
	recv := newCountingReceiver(t)
	port := recv.srv.Listener.Addr().(*net.TCPAddr).Port
	res := &fakeResolver{m: map[string][]netip.Addr{}}
	res.set("loopback.test", "127.0.0.1")
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.DeliveryAllow = nil // the default: loopback refused
	cfg.Resolver = res
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	c := clientOf(t, n)
	ctx := context.Background()
	p := strconv.Itoa(port)

	for _, u := range []string{
		recv.srv.URL, "http://[::ffff:127.0.0.1]:" + p + "/", "http://[::1]:" + p + "/",
		"http://0.0.0.0:" + p + "/", "http://loopback.test:" + p + "/hook",
	} {
		_, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(u)}})
		if apiCode(err) != api.CodeBlockedDestination || !strings.Contains(err.Error(), "--delivery-allow") {
			t.Fatalf("create %s: %v", u, err)
		}
		if strings.Contains(err.Error(), "10.53.53.53") {
			t.Fatalf("the answer names the resolver: %v", err)
		}
	}

	// A name that does not resolve when the subscription is made is
	// accepted (delivery checks it) and resolves to loopback later.
	sub, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr("http://rebind.test:" + p + "/hook")}})
	if err != nil {
		t.Fatal(err)
	}
	// An update to a refused URL is refused and changes nothing.
	if _, err := c.UpdateSubscription(ctx, "shop", sub.ID, api.SubscriptionPatch{URL: api.Ptr(recv.srv.URL)}); apiCode(err) != api.CodeBlockedDestination {
		t.Fatalf("update to a loopback URL: %v", err)
	}
	if got, err := c.Subscription(ctx, "shop", sub.ID, nil); err != nil || got.URL != "http://rebind.test:"+p+"/hook" {
		t.Fatalf("after a refused update: %+v %v", got, err)
	}
	res.set("rebind.test", "127.0.0.1")
	if _, err := c.Publish(ctx, "shop", api.NewEvent{Type: "order.created", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var failed api.Delivery
	waitFor(t, 20*time.Second, "a failed attempt", func() bool {
		page, err := c.Deliveries(ctx, "shop", sub.ID, api.DeliveryQuery{Status: api.DeliveryFailed})
		if err != nil || len(page.Deliveries) == 0 {
			return false
		}
		failed = page.Deliveries[0]
		return true
	})
	if !strings.HasPrefix(failed.Error, "blocked_destination: rebind.test ") || strings.Contains(failed.Error, "127.0.0.1") {
		t.Fatalf("attempt error %q", failed.Error)
	}
	// The attempt is recorded after its request would have finished: a
	// request that reached the receiver would be counted by now.
	if got := recv.distinct(); got != 0 {
		t.Fatalf("the receiver got %d events", got)
	}

	// /test: the same guard, and a rate limit per subscription.
	d, err := c.TestSubscription(ctx, "shop", sub.ID)
	if err != nil || d.Status != api.DeliveryFailed || !strings.HasPrefix(d.Error, "blocked_destination:") {
		t.Fatalf("test event: %+v %v", d, err)
	}
	var limited error
	for i := 0; i < 10 && limited == nil; i++ {
		_, limited = c.TestSubscription(ctx, "shop", sub.ID)
	}
	var ae *api.Error
	if !errors.As(limited, &ae) || ae.Code != api.CodeRateLimited || ae.StatusCode != http.StatusTooManyRequests || ae.RetryAfter < time.Second {
		t.Fatalf("the 11th test event in a row: %v", limited)
	}
	if got := recv.distinct(); got != 0 {
		t.Fatalf("the receiver got %d events", got)
	}
}

// TestDeliveryAllowOpensLoopbackButNotSelf: with loopback allowed a local
// receiver gets its events, by literal and by name, but a subscription to
// the node's own API is refused.
func TestDeliveryAllowOpensLoopbackButNotSelf(t *testing.T) {
	recv := newCountingReceiver(t)
	port := recv.srv.Listener.Addr().(*net.TCPAddr).Port
	res := &fakeResolver{m: map[string][]netip.Addr{}}
	res.set("receiver.test", "127.0.0.1")
	res.set("localhost", "127.0.0.1", "::1")
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.Resolver = res // fastConfig allows loopback
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	c := clientOf(t, n)
	ctx := context.Background()

	_, self, _ := net.SplitHostPort(n.HTTPAddr())
	for _, u := range []string{"http://" + n.HTTPAddr() + "/v1/backup", "http://localhost:" + self + "/v1/stores"} {
		_, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr(u)}})
		if apiCode(err) != api.CodeBlockedDestination || !strings.Contains(err.Error(), "own listen address") {
			t.Fatalf("create %s: %v", u, err)
		}
	}
	sub, err := c.CreateSubscription(ctx, "shop", api.SubscriptionCreate{SubscriptionPatch: api.SubscriptionPatch{URL: api.Ptr("http://receiver.test:" + strconv.Itoa(port) + "/")}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Publish(ctx, "shop", api.NewEvent{Type: "order.created", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "delivered by name", func() bool { return recv.count(ev.Events[0].ID) > 0 })
	if d, err := c.TestSubscription(ctx, "shop", sub.ID); err != nil || d.Status != api.DeliverySucceeded {
		t.Fatalf("test event: %+v %v", d, err)
	}
}

// TestJoinAddressGuard: a join whose raft_addr no member can have is
// refused before anything is proposed.
func TestJoinAddressGuard(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.Resolver = &fakeResolver{m: map[string][]netip.Addr{"metadata.test": {netip.MustParseAddr("169.254.169.254")}}}
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	for _, addr := range []string{"169.254.169.254:8081", "0.0.0.0:8081", "[fe80::1]:8081", "224.0.0.1:8081", "metadata.test:8081"} {
		err := n.Join(context.Background(), api.JoinRequest{ID: "n9", RaftAddr: addr, HTTPAddr: "127.0.0.1:1"})
		if err == nil || !strings.Contains(err.Error(), "no cluster member can have") {
			t.Fatalf("join at %s: %v", addr, err)
		}
	}
	if servers, _ := n.raft.Servers(); len(servers) != 1 {
		t.Fatalf("configuration changed: %+v", servers)
	}
}

// TestJoinAtDeadAddressKeepsQuorum: a voter joined at an address where no
// node answers enters as a non-voter, so the one-node cluster keeps its
// quorum and goes on committing; after JoinAnswerTimeout the join fails
// with a timeout and the configuration is as it was.
func TestJoinAtDeadAddressKeepsQuorum(t *testing.T) {
	cfg := fastConfig("n1", filepath.Join(t.TempDir(), "n1"))
	cfg.Bootstrap = true
	cfg.JoinAnswerTimeout = 2 * time.Second
	n := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- n.Join(context.Background(), api.JoinRequest{ID: "n9", RaftAddr: dead, HTTPAddr: "127.0.0.1:1"})
	}()
	waitFor(t, 10*time.Second, "n9 in the configuration as a non-voter", func() bool {
		servers, _ := n.raft.Servers()
		for _, s := range servers {
			if s.ID == "n9" {
				if s.Suffrage != "nonvoter" {
					t.Fatalf("n9 entered as %s", s.Suffrage)
				}
				return true
			}
		}
		return false
	})
	// The cluster still commits: n9 does not count towards the quorum.
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := clientOf(t, n).Publish(pctx, "shop", api.NewEvent{Type: "order.created", Data: []byte(`{}`)}); err != nil {
		t.Fatalf("publish while a dead node joins: %v", err)
	}
	var jerr error
	select {
	case jerr = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the join did not end within 60s")
	}
	if jerr == nil || !strings.Contains(jerr.Error(), "did not answer the leader") {
		t.Fatalf("join at a dead address: %v", jerr)
	}
	if took := time.Since(start); took < cfg.JoinAnswerTimeout {
		t.Fatalf("gave up after %s, before JoinAnswerTimeout", took)
	}
	servers, err := n.raft.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != "n1" || servers[0].Suffrage != "voter" {
		t.Fatalf("configuration after the failed join: %+v %v", servers, err)
	}
}
