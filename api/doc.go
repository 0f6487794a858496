// Package api is Herald's wire contract and its Go client.
//
// It holds the JSON types of every request and response of the HTTP API,
// the header names, the error codes with their HTTP status, the request
// limits, the OpenAPI document of the whole API (OpenAPI), and Client,
// which has one typed method per route. The CLI (cmd/herald), the
// benchmark (bench), the nodes themselves (forwarded publishes, joins,
// relays to the leader) and the tests all make their Herald requests
// through Client; it is also the public Go SDK (docs/go-client.md).
//
// The package imports nothing of the server, so a program that only talks
// to Herald pulls in the standard library and nothing else:
//
//	go list -deps github.com/herald-io/herald/api
//
// A Client is given one or more node addresses. Every node serves the
// whole API (followers relay what only the leader can answer), so any
// address works; when a node answers that it relayed a request to the
// leader and the leader is one of the configured addresses, the client
// sends later requests there directly. Idempotent requests that fail
// because a node is unreachable or has no leader are retried on the next
// address.
package api
