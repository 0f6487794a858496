// Package systemtest holds Herald's fault-injection suite: it builds the
// herald binary, runs real `herald serve` processes on loopback, and
// injects faults while clients publish and subscriptions deliver — kill -9
// of the leader or a follower, SIGSTOP/SIGCONT pauses, and network
// partitions through TCP proxies in front of every node's Raft port. Then
// it checks that nothing acknowledged was lost or stored twice, that every
// event was delivered, and that ordered subscriptions kept their order.
//
// Each node listens for Raft on its own loopback address (127.0.0.11,
// .12, ...) and dials from it, so the proxy in front of a node knows which
// peer a connection comes from and can cut any pair. The HTTP API is not
// partitioned.
//
// The suite runs in `go test ./...` (a couple of fault cycles); more with
//
//	go test ./systemtest -run TestFaults -cycles 20 -v
//
// and it is skipped with -short. See docs/reliability.md.
package systemtest
