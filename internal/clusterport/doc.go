// Package clusterport is the node-to-node port: one TCP listener (the
// Raft address) that carries Raft and node-to-node HTTP, both over TLS.
//
// A connection starts with one plain byte that names its channel (Raft,
// or HTTP), then the TLS handshake. Raft connections are accepted only
// from peers whose certificate the member check accepts (signed by the
// cluster CA); HTTP connections may arrive without a certificate (a node
// that is enrolling with a join token) and the HTTP handler decides per
// request. Anything else (plain TCP Raft from an old node, a port
// scanner) is closed after at most the handshake timeout.
package clusterport
