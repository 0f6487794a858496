package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/node"
)

// TestClientAgainstACluster: a client given every node's address writes
// through a follower, moves to the leader, and rides out the leader's
// loss on idempotent calls.
func TestClientAgainstACluster(t *testing.T) {
	nodes, err := startCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	var leader *node.Node
	var addrs []string
	for _, n := range nodes {
		if n.IsLeader() {
			leader = n
		} else {
			addrs = append(addrs, n.HTTPAddr()) // followers first
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	addrs = append(addrs, leader.HTTPAddr())
	c := newClient(t, api.Config{Addresses: addrs, MaxRetries: 10})
	ctx := context.Background()

	for i := 1; i <= 5; i++ {
		res, err := c.Publish(ctx, "shop", api.NewEvent{ID: fmt.Sprintf("e%d", i), Type: "store/order/created", Data: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))})
		if err != nil || res.Events[0].Seq != uint64(i) || !res.Created {
			t.Fatalf("publish %d: %+v %v", i, res, err)
		}
	}
	// A leader-level read on a follower is relayed; the client then
	// prefers the leader, if it still leads.
	si, err := c.Store(ctx, "shop", nil)
	if err != nil || si.LastSeq != 5 {
		t.Fatalf("store: %+v %v", si, err)
	}
	cl, err := c.Cluster(ctx, nil)
	if err != nil || len(cl.Nodes) != 3 || cl.Leader == "" {
		t.Fatalf("cluster: %+v %v", cl, err)
	}
	if cl.ID == leader.ID() && c.Addresses()[0] != "http://"+leader.HTTPAddr() {
		t.Fatalf("the client did not move to the leader: %v", c.Addresses())
	}

	// Lose the node that led; idempotent calls find the new leader.
	for _, n := range nodes {
		if n.IsLeader() {
			n.Close()
		}
	}
	res, err := c.Publish(ctx, "shop", api.NewEvent{ID: "e6", Type: "store/order/created", Data: json.RawMessage(`6`)})
	if err != nil || res.Events[0].Seq != 6 {
		t.Fatalf("publish after losing the leader: %+v %v", res, err)
	}
	si, err = c.Store(ctx, "shop", &api.QueryOptions{Consistency: api.ConsistencyLinearizable})
	if err != nil || si.LastSeq != 6 {
		t.Fatalf("linearizable read after losing the leader: %+v %v", si, err)
	}
	page, err := c.Events(ctx, "shop", api.ReadOptions{After: 4})
	if err != nil || len(page.Events) != 2 || page.Events[0].ID != "e5" || string(page.Events[1].Data) != "6" {
		t.Fatalf("events: %+v %v", page, err)
	}
}
