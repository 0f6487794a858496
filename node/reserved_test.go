package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// TestReservedStoreOnEveryPath: a publish to _herald is reserved_store
// whichever node takes it and however it arrives, and stores nothing.
func TestReservedStoreOnEveryPath(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	ctx := context.Background()
	for _, n := range nodes {
		_, err := clientOf(t, n).Publish(ctx, hlog.HeraldStore, api.NewEvent{Type: "herald.delivery.dead", Data: json.RawMessage(`{}`)})
		if !api.IsCode(err, api.CodeReservedStore) {
			t.Errorf("over HTTP to %s (leader %v): %v", n.ID(), n.IsLeader(), err)
		}
		_, err = n.Publish(ctx, httpapi.PublishRequest{Store: hlog.HeraldStore, Events: []hlog.NewEvent{{Type: "t", Data: []byte(`1`)}}})
		if !errors.Is(err, hlog.ErrReservedStore) {
			t.Errorf("Publish on %s: %v", n.ID(), err)
		}
	}
	for _, n := range nodes {
		if _, err := n.DB().Store(hlog.HeraldStore); !errors.Is(err, hlog.ErrStoreNotFound) {
			t.Fatalf("%s: _herald holds events: %v", n.ID(), err)
		}
	}
}
