package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/netguard"
)

// LocalCluster describes a cluster of nodes on loopback in one process,
// for `herald dev`, `herald bench` and tests.
type LocalCluster struct {
	Dir    string // node i keeps its data in Dir/n<i>
	Nodes  int
	Port   int // first HTTP port; node i uses Port+2i (HTTP) and Port+2i+1 (Raft); 0 = free ports
	Logger *slog.Logger
	// NoAuth runs the API without authentication (tests, benchmarks);
	// otherwise the first node writes its admin key to Dir/n1/admin.key.
	NoAuth bool
	// DeliveryAllow opens ranges to webhooks (Config.DeliveryAllow);
	// nil allows loopback (127.0.0.0/8, ::1), where a local cluster's
	// receivers are.
	DeliveryAllow []netip.Prefix
	// Tweak, if set, adjusts each node's config before it starts.
	Tweak func(*Config)
}

// StartLocalCluster starts the nodes: the first bootstraps, the others
// join through it with a join token from the leader. It returns when every node knows the leader, every
// member's HTTP address, and every member votes. On error the started nodes are returned too, for
// the caller to close.
func StartLocalCluster(ctx context.Context, lc LocalCluster) ([]*Node, error) {
	if lc.Logger == nil {
		lc.Logger = slog.Default()
	}
	var nodes []*Node
	for i := 0; i < lc.Nodes; i++ {
		cfg := Config{
			ID:       fmt.Sprintf("n%d", i+1),
			DataDir:  filepath.Join(lc.Dir, fmt.Sprintf("n%d", i+1)),
			HTTPAddr: "127.0.0.1:0",
			RaftAddr: "127.0.0.1:0",
			Logger:   lc.Logger,
			NoAuth:   lc.NoAuth,
		}
		cfg.DeliveryAllow = lc.DeliveryAllow
		if cfg.DeliveryAllow == nil {
			cfg.DeliveryAllow = netguard.Loopback
		}
		if lc.Port > 0 {
			cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", lc.Port+2*i)
			cfg.RaftAddr = fmt.Sprintf("127.0.0.1:%d", lc.Port+2*i+1)
		}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{nodes[0].HTTPAddr()}
			tok, err := localToken(ctx, nodes)
			if err != nil {
				return nodes, err
			}
			cfg.JoinToken = tok
		}
		if lc.Tweak != nil {
			lc.Tweak(&cfg)
		}
		n, err := New(cfg)
		if err != nil {
			return nodes, err
		}
		if err := n.Open(); err != nil {
			return nodes, err
		}
		nodes = append(nodes, n)
		if i == 0 {
			if err := waitUntil(ctx, 15*time.Second, n.IsLeader); err != nil {
				return nodes, fmt.Errorf("first node did not become leader: %w", err)
			}
			// Its admin key now, in its data dir, for the caller to hand
			// out (the node would make it within half a second anyway).
			if err := n.ensureAdminKey(); err != nil {
				return nodes, err
			}
		}
	}
	err := waitUntil(ctx, 30*time.Second, func() bool {
		for _, n := range nodes {
			info, err := n.Cluster(ctx, api.ConsistencyLocal)
			if err != nil || info.Leader == "" || len(info.Nodes) != len(nodes) {
				return false
			}
			for _, m := range info.Nodes {
				// A joining node is a non-voter until it has caught up.
				if m.HTTPAddr == "" || m.Suffrage != "voter" {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return nodes, fmt.Errorf("cluster did not form: %w", err)
	}
	return nodes, nil
}

// localToken makes a join token on whichever node leads.
func localToken(ctx context.Context, nodes []*Node) (string, error) {
	var tok string
	var last error
	err := waitUntil(ctx, 15*time.Second, func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				jt, err := n.CreateJoinToken(ctx, time.Hour)
				if err == nil {
					tok = jt.Token
					return true
				}
				last = err
			}
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("join token: %w (%v)", err, last)
	}
	return tok, nil
}

func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
