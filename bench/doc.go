// Package bench measures Herald from the outside, over its HTTP API, as
// `herald bench` runs it: the machine's ceiling (a bare client POSTing
// signed bodies to the same receiver, and the disk's fsync rate), publish
// throughput with many clients (single events and batches), delivery
// throughput to 1..N subscriptions with every result committed through
// Raft (unordered and ordered), latency at a fixed rate (publish, and
// publish ack → receipt; coordinated omission accounted for: latency is
// measured from when a request was due), and a leader kill under load
// (the gaps until publishing and delivery resume, and an audit of every
// acknowledged event: stored once, delivered).
//
// The Receiver verifies every request's signature and counts each
// (subscription, event) pair once; what Herald considers delivered but
// the receiver never recorded is reported as lost. Run drives the
// scenarios against an in-process loopback cluster or a running one.
package bench
