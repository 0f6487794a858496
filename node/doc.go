// Package node assembles a Herald node: it opens the event log (package
// log), starts Raft (package raftstore) and the HTTP API (package httpapi),
// and provides what the API needs:
//
//   - a group-commit batcher that packs concurrent publishes into one Raft
//     entry (at most two entries in flight; while they commit, the next
//     batch fills);
//   - publishes from any node: the accepting node assigns ids and
//     timestamps, then commits through the leader (itself, or by sending
//     the identified events to the leader), riding out elections and lost
//     leadership by resending the same ids, which the log stores once;
//   - read consistency levels and long polls;
//   - leadership observation, membership (bootstrap, join, remove,
//     leadership transfer, graceful shutdown that hands leadership over),
//     self-registration of each node's HTTP address, and offline recovery
//     from a lost quorum (Recover);
//   - authentication: API keys (a cache of the replicated key hashes,
//     the first admin key in DATA/admin.key), and the cluster's PKI (a
//     CA made at bootstrap in DATA/tls, join tokens, enrollment of new
//     nodes; or the operator's certificates).
//
// Two HTTP servers run the same API: the public one on --http (bearer
// keys) and the peer one on the cluster port (internal/clusterport, the
// Raft address: members only, by certificate). Calls to other nodes
// (joins, relays, publishes sent on to the leader) go to the peer one,
// as this node acting for the caller's key, through package api's Client
// like every other client of the API. See docs/security.md.
//
// A test starts a whole node with one call: New(cfg) then Open(); or a
// loopback cluster with StartLocalCluster.
package node
