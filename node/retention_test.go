package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	hlog "github.com/herald-io/herald/log"
)

// TestRetentionCompactsAcrossTheCluster: a store keeps its last 50 events,
// but not before a (paused) subscription has delivered them; the held-back
// count is reported, and once the subscription is gone every node removes
// the same prefix, keeps a verifiable chain, and answers 410 for it.
func TestRetentionCompactsAcrossTheCluster(t *testing.T) {
	nodes := mustStartCluster(t, 3, func(c *Config) { c.RetentionInterval = 50 * time.Millisecond })
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	if err := leader.SetRetention(ctx, "shop", hlog.Retention{MaxEvents: 50}); err != nil {
		t.Fatal(err)
	}
	sub, err := leader.CreateSubscription(ctx, subRequest("shop", hlog.SubPatch{
		URL: api.Ptr("http://127.0.0.1:9/hook"), Status: api.Ptr(hlog.SubPaused)}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		evs := make([]hlog.NewEvent, 50)
		for j := range evs {
			evs[j] = hlog.NewEvent{Type: "order.created", Data: []byte(fmt.Sprint(i*50 + j))}
		}
		if _, err := leader.Publish(ctx, httpapi.PublishRequest{Store: "shop", Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "held back reported", func() bool {
		si, err := leader.Store(ctx, "shop", api.ConsistencyLeader)
		return err == nil && si.HeldBack == 150 && si.HeldBy == sub.ID && si.FirstSeq == 1
	})
	if err := leader.DeleteSubscription(ctx, "shop", sub.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "compacted on every node", func() bool {
		for _, n := range nodes {
			si, err := n.DB().Store("shop")
			if err != nil || si.FirstSeq != 151 || si.Events != 50 || si.LastSeq != 200 {
				return false
			}
		}
		return true
	})
	head := ""
	for _, n := range nodes {
		if err := n.DB().VerifyChain("shop"); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
		si, _ := n.DB().Store("shop")
		if head == "" {
			head = si.HeadHash
		} else if si.HeadHash != head {
			t.Fatalf("%s: head %s, want %s", n.ID(), si.HeadHash, head)
		}
	}
	c := clientOf(t, leader)
	_, err = c.Events(ctx, "shop", api.ReadOptions{})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusGone || ae.Code != api.CodeCompacted || ae.FirstSeq != 151 {
		t.Fatalf("read of removed events: %#v", err)
	}
	page, err := c.Events(ctx, "shop", api.ReadOptions{After: 150, Limit: 1000})
	if err != nil || len(page.Events) != 50 {
		t.Fatalf("read from the first seq: %v, %+v", err, page)
	}
}

// TestNonVoterJoins: a fourth node joins as a non-voter, receives the log,
// shows as such, and the three voters keep their quorum without it.
func TestNonVoterJoins(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	cfg := fastConfig("n4", t.TempDir())
	cfg.Join, cfg.NonVoter, cfg.JoinToken = []string{leader.HTTPAddr()}, true, joinToken(t, nodes)
	replica := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "n4 a non-voter", func() bool {
		info, err := leader.Cluster(context.Background(), api.ConsistencyLocal)
		if err != nil {
			return false
		}
		for _, m := range info.Nodes {
			if m.ID == "n4" {
				return m.Suffrage == "nonvoter" && m.HTTPAddr != ""
			}
		}
		return false
	})
	if code, b := publish(t, replica.HTTPAddr(), "shop", `{"type":"t","data":1}`); code != 201 {
		t.Fatalf("publish through the non-voter: %d %s", code, b)
	}
	waitConverged(t, append(nodes, replica), "shop", 1)
	if replica.IsLeader() {
		t.Fatal("a non-voter leads")
	}
}

// TestReplaySinceAfterRetention: a replay "since" a time before the first
// kept event starts at the first kept event (as a from_seq below it does),
// rather than failing with compacted.
func TestReplaySinceAfterRetention(t *testing.T) {
	n := mustStartCluster(t, 1, func(c *Config) { c.RetentionInterval = 50 * time.Millisecond })[0]
	ctx := context.Background()
	if err := n.SetRetention(ctx, "shop", hlog.Retention{MaxEvents: 5}); err != nil {
		t.Fatal(err)
	}
	evs := make([]hlog.NewEvent, 12)
	for i := range evs {
		evs[i] = hlog.NewEvent{Type: "order.created", Data: []byte(fmt.Sprint(i))}
	}
	if _, err := n.Publish(ctx, httpapi.PublishRequest{Store: "shop", Events: evs}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "compacted to the last 5", func() bool {
		si, err := n.DB().Store("shop")
		return err == nil && si.FirstSeq == 8
	})
	sub, err := n.CreateSubscription(ctx, subRequest("shop", hlog.SubPatch{URL: api.Ptr("http://127.0.0.1:9/hook"), Status: api.Ptr(hlog.SubPaused)}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Replay(ctx, "shop", sub.ID, httpapi.ReplayRequest{Since: time.Now().Add(-time.Hour)})
	if err != nil || res.FromSeq != 8 || res.Queued != 5 {
		t.Fatalf("replay since an hour ago: %+v %v", res, err)
	}
}
