package node

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// TestTypesReadFromFollower: the type index is kept by the FSM on every
// node alike: a follower answers GET /v1/stores/{store}/types from its
// own state (consistency=local) with what the leader answers, a
// deduplicated publish is not counted, a node that caught up through a
// snapshot install has the same index, and retention lowers the counts on
// every node the same way. No node is assumed to stay leader: every
// write goes through a client of all nodes, and "a follower" is whichever
// node does not lead at the moment of the read.
func TestTypesReadFromFollower(t *testing.T) {
	nodes := mustStartCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold = 64
		c.TrailingLogs = 16
		c.SnapshotInterval = time.Hour // only explicit snapshots
		c.RetentionInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.HTTPAddr())
	}
	cl, err := api.NewClient(api.Config{Addresses: addrs, Timeout: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pub := func(evs ...api.NewEvent) {
		t.Helper()
		var err error
		waitFor(t, 30*time.Second, "a publish", func() bool {
			_, err = cl.PublishBatch(ctx, "shop-1", evs) // every event has an id: safe to repeat
			return err == nil
		})
	}
	ev := func(id, typ string) api.NewEvent {
		return api.NewEvent{ID: id, Type: typ, Data: json.RawMessage(`{}`)}
	}

	// One node misses the first events and catches up from a snapshot.
	behind := nodes[0]
	for _, n := range nodes {
		if !n.IsLeader() {
			behind = n
			break
		}
	}
	behind.stop()
	others := []*testNode{}
	for _, n := range nodes {
		if n != behind {
			others = append(others, n)
		}
	}
	pub(ev("e1", "order.created"), ev("e2", "order.paid"), ev("e3", "order.created"))
	pub(ev("e1", "order.created")) // a duplicate: stores nothing
	for i := 0; i < 100; i++ {
		pub(ev(fmt.Sprintf("s%03d", i), "stock.moved"))
	}
	// Both snapshot (and drop the older log), so whichever leads when the
	// node comes back sends it a snapshot.
	for _, n := range others {
		if err := n.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
	}
	behind.restart()
	pub(ev("e4", "order.created"))
	waitConverged(t, nodes, "shop-1", 104)

	last, err := cl.Events(ctx, "shop-1", api.ReadOptions{After: 103, Consistency: api.ConsistencyLinearizable})
	if err != nil || len(last.Events) != 1 {
		t.Fatalf("the last event: %+v %v", last, err)
	}
	e4 := last.Events[0]
	// Every node, followers included, holds the same index.
	want := []api.EventType{
		{Type: "order.created", Count: 3, LastSeenAt: e4.Timestamp, LastSeq: 104},
		{Type: "order.paid", Count: 1, LastSeq: 2},
		{Type: "stock.moved", Count: 100, LastSeq: 103},
	}
	check := func(what string, want []api.EventType) {
		t.Helper()
		var got map[string]*api.StoreTypes
		waitFor(t, 30*time.Second, what+": every node lists the same types", func() bool {
			got = map[string]*api.StoreTypes{}
			for _, n := range nodes {
				st, err := clientOf(t, n).Types(ctx, "shop-1", &api.QueryOptions{Consistency: api.ConsistencyLocal})
				if err != nil || !sameTypes(st.Types, want) || st.Truncated || st.Store != "shop-1" {
					return false
				}
				got[n.ID()] = st
			}
			return reflect.DeepEqual(got[nodes[0].ID()], got[nodes[1].ID()]) && reflect.DeepEqual(got[nodes[0].ID()], got[nodes[2].ID()])
		})
		// And a follower of the moment answers a default (leader) read
		// with the same, relayed or not.
		waitFor(t, 30*time.Second, what+": a read through a follower", func() bool {
			for _, n := range nodes {
				if n.IsLeader() {
					continue
				}
				st, err := clientOf(t, n).Types(ctx, "shop-1", nil)
				return err == nil && reflect.DeepEqual(st, got[n.ID()])
			}
			return false
		})
	}
	check("after the snapshot install", want)

	// Retention keeps the last 5 events: the counts drop on every node.
	waitFor(t, 30*time.Second, "a retention policy", func() bool {
		_, err := cl.SetRetention(ctx, "shop-1", api.Retention{MaxEvents: 5})
		return err == nil
	})
	check("after retention", []api.EventType{
		{Type: "order.created", Count: 1, LastSeenAt: e4.Timestamp, LastSeq: 104},
		{Type: "stock.moved", Count: 4, LastSeq: 103},
	})

	if _, err := clientOf(t, nodes[0]).Types(ctx, "nosuch", &api.QueryOptions{Consistency: api.ConsistencyLocal}); !api.IsCode(err, api.CodeNotFound) {
		t.Fatalf("unknown store: %v", err)
	}
}

// sameTypes compares type lists, ignoring LastSeenAt where want leaves it
// zero.
func sameTypes(got, want []api.EventType) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.LastSeenAt.IsZero() {
			w.LastSeenAt = g.LastSeenAt
		}
		if g.Type != w.Type || g.Count != w.Count || g.LastSeq != w.LastSeq || !g.LastSeenAt.Equal(w.LastSeenAt) || g.LastSeenAt.IsZero() {
			return false
		}
	}
	return true
}
