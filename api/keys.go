package api

import "time"

// Action is what a grant allows on the stores it names.
type Action string

// Actions. Keys, cluster membership, backups, retention and Herald's own
// store need an admin key.
const (
	ActionPublish       Action = "publish"       // publish events
	ActionRead          Action = "read"          // read events and store descriptions
	ActionSubscriptions Action = "subscriptions" // manage subscriptions, their deliveries, test, redeliver and replay
)

// Actions lists every action.
func Actions() []Action { return []Action{ActionPublish, ActionRead, ActionSubscriptions} }

// Limits of API keys.
const (
	KeyPrefix       = "hk_"  // every API key starts with it
	KeyIDPrefix     = "key_" // every key id starts with it
	JoinTokenPrefix = "hjt_" // every join token starts with it
	MaxKeyNameLen   = 128    // bytes
	MaxGrants       = 32     // per key
	MaxGrantStores  = 64     // store patterns per grant
	MaxKeys         = 10000  // per cluster
	MaxTokenTTL     = 7 * 24 * time.Hour
	DefaultTokenTTL = time.Hour
)

// Grant allows Actions on the stores matching one of Stores. A pattern is
// a store name, or a prefix followed by "*" (which matches the rest of a
// name: "plant-*" matches "plant-1"; "*" matches every store but
// _herald, which only an admin key or a grant naming it reaches).
type Grant struct {
	Stores  []string `json:"stores"`
	Actions []Action `json:"actions"`
}

// KeyRequest creates an API key (POST /v1/keys). A key is either Admin or
// has Grants.
type KeyRequest struct {
	Name      string     `json:"name"`
	Admin     bool       `json:"admin,omitempty"`
	Grants    []Grant    `json:"grants,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Key describes an API key. Key, the secret itself, is set only in the
// answer that creates it: Herald keeps only its hash.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Admin     bool       `json:"admin"`
	Grants    []Grant    `json:"grants"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt is approximate: the latest use the answering node has
	// seen (each node keeps its own, in memory; never a Raft write).
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	Key        string     `json:"key,omitempty"`
}

// KeyList is GET /v1/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

// JoinTokenRequest asks for a join token (POST /v1/cluster/tokens).
type JoinTokenRequest struct {
	// TTL is how long the token can be used (a Go duration, default 1h,
	// at most 168h).
	TTL string `json:"ttl,omitempty"`
}

// JoinToken is a one-time join token: it carries the cluster CA's
// fingerprint (so the joining node can check whom it talks to) and a
// secret that lets one node obtain a certificate.
type JoinToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// CAFingerprint is the SHA-256 of the cluster CA certificate (hex).
	CAFingerprint string `json:"ca_fingerprint"`
}

// EnrollRequest is what a joining node sends to a member's cluster port
// (not the API port) with a join token: a certificate request for its id.
type EnrollRequest struct {
	Token string `json:"token"`
	ID    string `json:"id"`
	CSR   string `json:"csr"` // PEM
}

// EnrollResponse is the answer to an EnrollRequest: the node certificate
// and the cluster CA (certificate and key, so the node can sign for later
// joiners when it leads).
type EnrollResponse struct {
	Cert   string `json:"cert"`
	CACert string `json:"ca_cert"`
	CAKey  string `json:"ca_key"`
	// SecretsKey is the cluster's master key of the secrets at rest (the
	// file form of DATA/secrets.key), for the new node to keep.
	SecretsKey string `json:"secrets_key,omitempty"`
}

// Hello is GET /v1/cluster/hello, served without a key: the address of
// this node's cluster port, where a joining node enrolls.
type Hello struct {
	ID          string `json:"id"`
	ClusterAddr string `json:"cluster_addr"`
}

// SecretsKeyRotation is the answer of POST /v1/secrets/rotate-key.
type SecretsKeyRotation struct {
	// KeyID is the new data key's id; every secret is now sealed under it.
	KeyID uint32 `json:"key_id"`
	// Resealed counts the subscriptions whose secrets were re-sealed.
	Resealed int `json:"resealed"`
	// MasterKey is the fingerprint of the master key that wraps it.
	MasterKey string `json:"master_key_fingerprint"`
}

// Self is the answer of GET /v1/self: the key the request was made with
// and what it may do (a dashboard hides what it may not). Anonymous is
// true on a node run with --no-auth, where anyone may do anything.
type Self struct {
	KeyID     string  `json:"key_id,omitempty"`
	Name      string  `json:"name"`
	Admin     bool    `json:"admin"`
	Grants    []Grant `json:"grants"`
	Anonymous bool    `json:"anonymous,omitempty"`
}
