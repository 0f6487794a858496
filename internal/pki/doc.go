// Package pki is Herald's cluster PKI: the cluster CA, the node
// certificates it signs, the TLS configurations of the cluster port
// (Raft and node-to-node HTTP, mutual TLS) and one-time join tokens.
//
// The first node of a cluster creates the CA (ECDSA P-256) and its own
// certificate. Every member holds a certificate signed by the CA whose
// common name is its node id. Peers are checked against the CA only, never
// against host names: the CA signs only members, so any certificate it
// signed is a member, and the member's identity is its node id.
//
// A new node joins with a join token. The token carries the SHA-256
// fingerprint of the CA certificate, so that the new node can check the
// cluster it talks to before it trusts anything (PinnedConfig), and a
// random secret, of which the cluster keeps only the hash and which it
// accepts once. With the token the new node sends a certificate request
// (NewCSR) that a member signs (CA.SignCSR).
//
// On disk a node keeps its PEM files in one directory (Files): ca.crt,
// ca.key, node.crt and node.key.
package pki
