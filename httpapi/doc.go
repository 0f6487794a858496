// Package httpapi is Herald's HTTP API: routing (httprouter), request
// decoding with strict limits, and the one table that turns errors into
// codes (errors.go; the codes and their statuses are package api's).
//
// The API serves services by role (service.go): events, stores,
// subscriptions and deliveries, cluster, backup. package node implements
// them all; a test passes only the roles it exercises (Services). The API
// owns syntax: JSON shape, unknown fields, query parameters, store names
// (checked on every route with a {store}), sizes, media types. What the
// values mean (defaults, ranges, existence, leadership) the services
// decide.
//
// Requests and responses are package api's wire types; events are written
// out byte for byte (api.Event.AppendJSON). A follower relays what only
// the leader can answer through an api.Client (relay.go), marked
// Herald-Forwarded so it is never relayed twice. The OpenAPI document
// (api.OpenAPI) is served at /v1/openapi.json; the tests validate every
// request and response against it. docs/api.md documents the API.
//
// Authentication (auth.go): with WithAuth every route but /healthz,
// /readyz and GET /v1/cluster/hello needs a bearer key, and the grant the
// route is registered with (perm: a store action, admin, or any key);
// guard runs before the handler and puts the caller's Identity in the
// request's context. The same API on the cluster port (WithPeer) takes
// only members, by certificate, acting for the key id they forward in
// Herald-Forwarded-For. Bodies must be JSON; a browser Origin other than
// the node's own needs WithCORS; an API on loopback checks Host
// (WithHostCheck).
package httpapi
