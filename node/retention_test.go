package node

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

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
	sub, err := leader.CreateSubscription(ctx, httpapi.CreateSubscriptionRequest{Sub: hlog.Subscription{
		Store: "shop", URL: "http://127.0.0.1:9/hook", Status: hlog.SubPaused}})
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
		si, err := leader.Store(ctx, "shop", httpapi.Leader)
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
	resp, err := httpc.Get(leader.url("/v1/stores/shop/events?after=0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || resp.Header.Get("Herald-First-Seq") != "151" {
		t.Fatalf("read of removed events: %d, first seq %q", resp.StatusCode, resp.Header.Get("Herald-First-Seq"))
	}
	var page struct {
		Events []apiEvent `json:"events"`
	}
	if st := getJSON(t, leader.url("/v1/stores/shop/events?after=150&limit=1000"), &page); st != 200 || len(page.Events) != 50 {
		t.Fatalf("read from the first seq: %d, %d events", st, len(page.Events))
	}
}

// TestNonVoterJoins: a fourth node joins as a non-voter, receives the log,
// shows as such, and the three voters keep their quorum without it.
func TestNonVoterJoins(t *testing.T) {
	nodes := mustStartCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	cfg := fastConfig("n4", t.TempDir())
	cfg.Join, cfg.NonVoter = []string{leader.HTTPAddr()}, true
	replica := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "n4 a non-voter", func() bool {
		info, err := leader.Cluster(context.Background(), httpapi.Local)
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
