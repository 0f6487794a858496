package bench

import (
	"context"
	"errors"
	"log/slog"

	"github.com/herald-io/herald/node"
)

// Cluster is an in-process loopback cluster to benchmark.
type Cluster struct {
	Nodes []*node.Node
}

// StartCluster starts size nodes with data under dir.
func StartCluster(ctx context.Context, dir string, size int, logger *slog.Logger) (*Cluster, error) {
	nodes, err := node.StartLocalCluster(ctx, node.LocalCluster{Dir: dir, Nodes: size, Logger: logger, NoAuth: true})
	c := &Cluster{Nodes: nodes}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// LeaderAddr returns the leader's HTTP address ("" if none).
func (c *Cluster) LeaderAddr() string {
	for _, n := range c.Nodes {
		if n.IsLeader() {
			return n.HTTPAddr()
		}
	}
	return ""
}

// Close stops every node.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}
