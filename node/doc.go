// Package node assembles a Herald node: it opens the event log (package
// log), starts Raft (package raftstore) and the HTTP API (package httpapi),
// and provides what the API needs: a group-commit batcher that coalesces
// concurrent publishes into one Raft entry, read consistency levels,
// leadership observation, and cluster membership (bootstrap, join,
// self-registration of each node's HTTP address).
//
// A test starts a whole node with one call: New(cfg) then Open().
package node
