package log

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/herald-io/herald/api"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketKeys   = []byte("keys")        // key id -> APIKey JSON
	bucketHashes = []byte("key_hashes")  // hex hash -> key id
	bucketTokens = []byte("join_tokens") // hex secret hash -> JoinToken JSON
	keyKeysInit  = []byte("keys_initialized")
)

// Key and join token errors.
var (
	// ErrInvalidKey means an API key request failed validation.
	ErrInvalidKey = errors.New("invalid key")
	// ErrKeyNotFound means no API key has that id.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists means a key with that id or hash exists.
	ErrKeyExists = errors.New("key exists")
	// ErrInvalidJoinToken means a join token is unknown, used or expired
	// (one answer for all three).
	ErrInvalidJoinToken = errors.New("invalid join token")
)

// APIKey is an API key as the cluster keeps it: never the key itself, only
// its SHA-256 (hex). Its JSON form is a storage and replication format.
type APIKey struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Hash      string      `json:"hash"`
	Admin     bool        `json:"admin,omitempty"`
	Grants    []api.Grant `json:"grants,omitempty"`
	CreatedAt int64       `json:"created_at"`           // unix ns
	ExpiresAt int64       `json:"expires_at,omitempty"` // unix ns; 0: never
}

// Expired reports whether the key has expired at now (unix ns).
func (k *APIKey) Expired(now int64) bool { return k.ExpiresAt != 0 && now >= k.ExpiresAt }

// ValidateKey checks a key record: the same rules on the leader before it
// proposes and in the FSM.
func ValidateKey(k *APIKey) error {
	if !strings.HasPrefix(k.ID, api.KeyIDPrefix) || len(k.ID) > 64 {
		return fmt.Errorf("%w: id must start with %s and be at most 64 bytes", ErrInvalidKey, api.KeyIDPrefix)
	}
	if k.Name == "" || len(k.Name) > api.MaxKeyNameLen || !utf8.ValidString(k.Name) {
		return fmt.Errorf("%w: name must be 1-%d bytes of UTF-8", ErrInvalidKey, api.MaxKeyNameLen)
	}
	if b, err := hex.DecodeString(k.Hash); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: hash must be 64 hex digits", ErrInvalidKey)
	}
	if k.Admin && len(k.Grants) > 0 {
		return fmt.Errorf("%w: an admin key has every right; give it no grants", ErrInvalidKey)
	}
	if !k.Admin && len(k.Grants) == 0 {
		return fmt.Errorf("%w: a key needs admin or at least one grant", ErrInvalidKey)
	}
	if len(k.Grants) > api.MaxGrants {
		return fmt.Errorf("%w: at most %d grants", ErrInvalidKey, api.MaxGrants)
	}
	for i, g := range k.Grants {
		if len(g.Stores) == 0 || len(g.Stores) > api.MaxGrantStores {
			return fmt.Errorf("%w: grants[%d]: 1-%d stores", ErrInvalidKey, i, api.MaxGrantStores)
		}
		for _, p := range g.Stores {
			if err := ValidateStorePattern(p); err != nil {
				return fmt.Errorf("%w: grants[%d]: %v", ErrInvalidKey, i, err)
			}
		}
		if len(g.Actions) == 0 {
			return fmt.Errorf("%w: grants[%d]: at least one action (%s)", ErrInvalidKey, i, actionList())
		}
		for _, a := range g.Actions {
			if !slices.Contains(api.Actions(), a) {
				return fmt.Errorf("%w: grants[%d]: unknown action %.40q (want %s)", ErrInvalidKey, i, a, actionList())
			}
		}
	}
	if k.CreatedAt <= 0 || k.ExpiresAt < 0 || (k.ExpiresAt != 0 && k.ExpiresAt <= k.CreatedAt) {
		return fmt.Errorf("%w: expires_at must be after created_at", ErrInvalidKey)
	}
	return nil
}

func actionList() string {
	var s []string
	for _, a := range api.Actions() {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

// ValidateStorePattern checks a grant's store pattern: a store name, or a
// prefix of one followed by "*".
func ValidateStorePattern(p string) error {
	if p == "*" {
		return nil
	}
	name, wild := strings.CutSuffix(p, "*")
	if strings.Contains(name, "*") {
		return fmt.Errorf("store pattern %.80q: \"*\" only at the end", p)
	}
	if wild {
		// A prefix: valid when some name starts with it.
		name += "a"
	}
	if err := ValidateStoreName(name); err != nil {
		return fmt.Errorf("store pattern %.80q: not a store name or a prefix of one followed by *", p)
	}
	return nil
}

// MatchStore reports whether a grant's store pattern covers store. A
// wildcard never covers HeraldStore; only its name does.
func MatchStore(pattern, store string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return store != HeraldStore && strings.HasPrefix(store, prefix)
	}
	return pattern == store
}

// CreateKey stores a new API key (validated again here: the FSM is the
// last line).
func (t *Tx) CreateKey(k APIKey) error {
	if err := ValidateKey(&k); err != nil {
		return err
	}
	keys, hashes := t.tx.Bucket(bucketKeys), t.tx.Bucket(bucketHashes)
	if keys.Get([]byte(k.ID)) != nil || hashes.Get([]byte(k.Hash)) != nil {
		return fmt.Errorf("%w: %s", ErrKeyExists, k.ID)
	}
	if keys.Stats().KeyN >= api.MaxKeys {
		return fmt.Errorf("%w: the cluster holds %d keys, the most it keeps", ErrInvalidKey, api.MaxKeys)
	}
	js, err := json.Marshal(&k)
	if err != nil {
		return err
	}
	if err := keys.Put([]byte(k.ID), js); err != nil {
		return err
	}
	if err := hashes.Put([]byte(k.Hash), []byte(k.ID)); err != nil {
		return err
	}
	t.keysChanged = true
	return t.tx.Bucket(bucketMeta).Put(keyKeysInit, []byte{1})
}

// DeleteKey revokes an API key.
func (t *Tx) DeleteKey(id string) error {
	keys := t.tx.Bucket(bucketKeys)
	v := keys.Get([]byte(id))
	if v == nil {
		return fmt.Errorf("%w: %.80q", ErrKeyNotFound, id)
	}
	var k APIKey
	if err := json.Unmarshal(v, &k); err != nil {
		return fmt.Errorf("%w: key %s: %v", ErrCorrupt, id, err)
	}
	if err := keys.Delete([]byte(id)); err != nil {
		return err
	}
	t.keysChanged = true
	return t.tx.Bucket(bucketHashes).Delete([]byte(k.Hash))
}

// JoinToken is a join token as the cluster keeps it: the SHA-256 of its
// secret (the bucket key) and when it expires. A used token is deleted.
type JoinToken struct {
	ExpiresAt int64 `json:"expires_at"` // unix ns
}

// CreateJoinToken records a join token's secret hash (hex), usable until
// expiresAt. Expired tokens are pruned (now comes with the command).
func (t *Tx) CreateJoinToken(hash string, expiresAt, now int64) error {
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: hash must be 64 hex digits", ErrInvalidJoinToken)
	}
	if expiresAt <= now {
		return fmt.Errorf("%w: already expired", ErrInvalidJoinToken)
	}
	b := t.tx.Bucket(bucketTokens)
	if err := pruneTokens(b, now); err != nil {
		return err
	}
	if b.Stats().KeyN >= api.MaxKeys {
		return fmt.Errorf("%w: %d unused join tokens are outstanding, the most kept", ErrInvalidJoinToken, api.MaxKeys)
	}
	js, _ := json.Marshal(JoinToken{ExpiresAt: expiresAt})
	return b.Put([]byte(hash), js)
}

// UseJoinToken consumes a join token: it works once, before it expires.
func (t *Tx) UseJoinToken(hash string, now int64) error {
	b := t.tx.Bucket(bucketTokens)
	v := b.Get([]byte(hash))
	if v == nil {
		return fmt.Errorf("%w: unknown or already used", ErrInvalidJoinToken)
	}
	var jt JoinToken
	if err := json.Unmarshal(v, &jt); err != nil {
		return fmt.Errorf("%w: join token: %v", ErrCorrupt, err)
	}
	if err := b.Delete([]byte(hash)); err != nil {
		return err
	}
	if now >= jt.ExpiresAt {
		return fmt.Errorf("%w: expired", ErrInvalidJoinToken)
	}
	return nil
}

func pruneTokens(b *bolt.Bucket, now int64) error {
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var jt JoinToken
		if json.Unmarshal(v, &jt) != nil || now >= jt.ExpiresAt {
			old = append(old, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Keys lists every API key, by id.
func (d *DB) Keys() ([]APIKey, error) {
	var out []APIKey
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(_, v []byte) error {
			var k APIKey
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("%w: key: %v", ErrCorrupt, err)
			}
			out = append(out, k)
			return nil
		})
	})
	return out, err
}

// Key returns one API key by id.
func (d *DB) Key(id string) (APIKey, error) {
	var k APIKey
	err := d.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeys).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %.80q", ErrKeyNotFound, id)
		}
		return json.Unmarshal(v, &k)
	})
	return k, err
}

// KeysInitialized reports whether a key was ever created in this cluster:
// the first admin key is made only when none ever was.
func (d *DB) KeysInitialized() (bool, error) {
	var ok bool
	err := d.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketMeta).Get(keyKeysInit) != nil
		return nil
	})
	return ok, err
}

// KeysVersion changes whenever an applied transaction created or deleted a
// key: callers cache keys and reload when it moves.
func (d *DB) KeysVersion() uint64 { return d.keysVersion.Load() }

// HasJoinToken reports whether a join token with this secret hash (hex)
// is outstanding (unused; it may have expired since): the leader checks
// it before it spends a Raft entry on a token, so a stranger's guesses
// cost no writes.
func (d *DB) HasJoinToken(hash string) bool {
	var ok bool
	d.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketTokens).Get([]byte(hash)) != nil
		return nil
	})
	return ok
}
