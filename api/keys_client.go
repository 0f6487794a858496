package api

import (
	"context"
	"net/http"
)

// CreateKey creates an API key (admin). The answer's Key is the key
// itself, shown this once.
func (c *Client) CreateKey(ctx context.Context, r KeyRequest) (*Key, error) {
	body, err := marshal(r)
	if err != nil {
		return nil, err
	}
	var out Key
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Keys lists the API keys (admin); never the keys themselves.
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var out KeyList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// Key describes one API key (admin).
func (c *Client) Key(ctx context.Context, id string) (*Key, error) {
	var out Key
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + seg(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey deletes an API key on every node (admin).
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/keys/" + seg(id), idempotent: true}, nil)
	return err
}

// CreateJoinToken makes a one-time join token (admin); ttl "" is the
// default (1h).
func (c *Client) CreateJoinToken(ctx context.Context, ttl string) (*JoinToken, error) {
	body, err := marshal(JoinTokenRequest{TTL: ttl})
	if err != nil {
		return nil, err
	}
	var out JoinToken
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/cluster/tokens", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Hello asks a node for its cluster port's address (no key needed).
func (c *Client) Hello(ctx context.Context) (*Hello, error) {
	var out Hello
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/cluster/hello", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Enroll trades a join token for a node certificate. It is served on a
// member's cluster port, so c must dial that port (Herald's node does).
func (c *Client) Enroll(ctx context.Context, r EnrollRequest) (*EnrollResponse, error) {
	body, err := marshal(r)
	if err != nil {
		return nil, err
	}
	var out EnrollResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/cluster/enroll", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ForwardingFor returns a client like c whose requests are marked
// forwarded and name the identity they are made for (a key id, or
// ForwardedAnonymous): for a node passing a caller's request on to the
// leader over the cluster port.
func (c *Client) ForwardingFor(identity string) *Client {
	cc := *c
	cc.cfg.Forwarded = true
	cc.cfg.forwardedFor = identity
	return &cc
}

// RotateSecretsKey makes a new data key for the secrets at rest and
// re-seals every subscription's secrets under it (admin).
func (c *Client) RotateSecretsKey(ctx context.Context) (*SecretsKeyRotation, error) {
	var out SecretsKeyRotation
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/secrets/rotate-key"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Self describes the key the client uses (any valid key).
func (c *Client) Self(ctx context.Context) (*Self, error) {
	var out Self
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/self", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
