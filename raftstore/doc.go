// Package raftstore is everything Herald does with hashicorp/raft: the FSM
// (a thin adapter over a command processor that decodes versioned binary
// commands and applies them to the event log), Raft's log and stable store
// (hashicorp/raft-wal in wal/, or raft-boltdb/v2 in raft.db, chosen per
// data dir, and the conversion between them), file snapshots that carry
// the event log's bbolt file, and the transport over the node's cluster
// port (mutual TLS).
//
// Nothing above this package imports raft: its errors are translated into
// this package's sentinels (ErrNotLeader, ErrLeadershipLost, ...). See
// DESIGN.md.
package raftstore
