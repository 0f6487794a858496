package api_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/herald-io/herald/node"
)

// The example and the cluster tests run real nodes; they are closed when
// the tests end.
var (
	nodesMu sync.Mutex
	started []*node.Node
	dirs    []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	nodesMu.Lock()
	for _, n := range started {
		n.Close()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	nodesMu.Unlock()
	os.Exit(code)
}

// startCluster starts size nodes on 127.0.0.1 in a temporary directory.
func startCluster(size int) ([]*node.Node, error) {
	dir, err := os.MkdirTemp("", "herald-api-test-*")
	if err != nil {
		return nil, err
	}
	nodes, err := node.StartLocalCluster(context.Background(), node.LocalCluster{Dir: dir, Nodes: size, NoAuth: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	nodesMu.Lock()
	started = append(started, nodes...)
	dirs = append(dirs, dir)
	nodesMu.Unlock()
	return nodes, err
}

// startNode starts a single node and returns its HTTP address.
func startNode() string {
	nodes, err := startCluster(1)
	if err != nil {
		log.Fatal(err)
	}
	return nodes[0].HTTPAddr()
}
