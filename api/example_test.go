package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/herald-io/herald/api"
)

// Publish an event, read it back, and tell a missing store from other
// errors. startNode runs a single node on 127.0.0.1, as `herald serve`
// does; against your own cluster, list its nodes' addresses instead.
func Example() {
	addr := startNode()
	ctx := context.Background()

	c, err := api.NewClient(api.Config{Addresses: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}

	// With an id, a publish can be retried safely: the event is stored once.
	ev := api.NewEvent{ID: "order-1001-created", Type: "store/order/created", Data: json.RawMessage(`{"order":1001,"total":"59.90"}`)}
	res, err := c.Publish(ctx, "shop-1", ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored:", res.Events[0].Seq, res.Created)
	res, err = c.Publish(ctx, "shop-1", ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("again:", res.Events[0].Seq, res.Created)

	page, err := c.Events(ctx, "shop-1", api.ReadOptions{Types: []string{"store/order/*"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Events {
		fmt.Println(e.Seq, e.ID, e.Type, string(e.Data))
	}

	_, err = c.Store(ctx, "no-such-store", nil)
	fmt.Println("not found:", api.IsCode(err, api.CodeNotFound))
	// Output:
	// stored: 1 true
	// again: 1 false
	// 1 order-1001-created store/order/created {"order":1001,"total":"59.90"}
	// not found: true
}
