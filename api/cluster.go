package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Cluster describes the cluster: the leader's view (a follower relays the
// request there) unless q asks for local consistency.
func (c *Client) Cluster(ctx context.Context, q *QueryOptions) (*Cluster, error) {
	var out Cluster
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/cluster", query: consistencyQuery(q), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Join adds a member (or updates its addresses, or promotes a non-voter).
func (c *Client) Join(ctx context.Context, r JoinRequest) (*JoinResult, error) {
	body, err := marshal(r)
	if err != nil {
		return nil, err
	}
	var out JoinResult
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/cluster/nodes", body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveNode removes a member from the cluster.
func (c *Client) RemoveNode(ctx context.Context, id string) (*RemoveResult, error) {
	var out RemoveResult
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/cluster/nodes/" + seg(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TransferLeader hands leadership to the member to ("" : any up-to-date
// voter) and returns the new leader once it is known.
func (c *Client) TransferLeader(ctx context.Context, to string) (*TransferResult, error) {
	body, err := marshal(TransferRequest{To: to})
	if err != nil {
		return nil, err
	}
	var out TransferResult
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/cluster/leader/transfer", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Backup streams a consistent copy of one node's event log (a bbolt file)
// into w and returns the bytes written. A stream cut short is an error;
// check the file before trusting it (herald backup does).
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, call{method: http.MethodGet, path: "/v1/backup", idempotent: true, noTimeout: true})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("api: backup cut short after %d bytes: %w", n, err)
	}
	return n, nil
}

// Health is GET /healthz: the process serves.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var out Health
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/healthz", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Ready is GET /readyz: nil when the node knows a leader and has applied
// everything it knows to be committed (a not_ready error otherwise).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: "/readyz"}, nil)
	return err
}

// OpenAPIDocument fetches the node's OpenAPI document (GET
// /v1/openapi.json).
func (c *Client) OpenAPIDocument(ctx context.Context) ([]byte, error) {
	resp, err := c.send(ctx, call{method: http.MethodGet, path: "/v1/openapi.json", idempotent: true})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
