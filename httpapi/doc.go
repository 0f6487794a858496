// Package httpapi is Herald's HTTP API: httprouter handlers over a Service
// (implemented by package node), JSON request decoding with strict limits,
// events written out byte for byte (log.Event.AppendJSON), one place that
// maps errors to a status and a stable code (errors.go), and the relay that
// forwards writes and leader-level reads from a follower to the leader
// (forward.go). docs/api.md documents the API.
//
// Cross-cutting concerns such as authentication will slot in as middleware
// around the router in New.
package httpapi
