// Package bench measures Herald from the outside, over its HTTP API: publish
// throughput with many concurrent clients, single events or batches, and
// the publish latency distribution at a fixed offered rate (coordinated
// omission accounted for: latency is measured from when a request was due,
// not from when a busy client got round to sending it), and a leader kill
// under load (the gap until publishing resumes, and an audit of every
// acknowledged event on a survivor).
//
// `herald bench publish` and the Benchmark functions in this package's tests
// drive it against an in-process three-node loopback cluster.
package bench
