package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/fsutil"
	hlog "github.com/herald-io/herald/log"
)

// AdminKeyFile is the file in the data dir where the first start of a new
// cluster writes its admin key (0600).
const AdminKeyFile = "admin.key"

// keyCache holds the cluster's API keys by hash, reloaded from the event
// log whenever an applied entry changed them (log.DB.KeysVersion): a key
// revoked through Raft stops working on a node as soon as the node has
// applied the revocation.
type keyCache struct {
	db *hlog.DB

	snap    atomic.Pointer[keySnapshot] // read without a lock on every request
	mu      sync.Mutex                  // one rebuild at a time; lastUse
	lastUse map[string]time.Time
}

// keySnapshot is the keys as of one KeysVersion.
type keySnapshot struct {
	version uint64
	byHash  map[[32]byte]hlog.APIKey
	byID    map[string]hlog.APIKey
}

func (c *keyCache) get() (byHash map[[32]byte]hlog.APIKey, byID map[string]hlog.APIKey, err error) {
	v := c.db.KeysVersion()
	if s := c.snap.Load(); s != nil && s.version == v {
		return s.byHash, s.byID, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.snap.Load(); s != nil && s.version == v {
		return s.byHash, s.byID, nil // another request rebuilt it
	}
	keys, err := c.db.Keys()
	if err != nil {
		return nil, nil, err
	}
	s := &keySnapshot{version: v, byHash: make(map[[32]byte]hlog.APIKey, len(keys)), byID: make(map[string]hlog.APIKey, len(keys))}
	for _, k := range keys {
		var h [32]byte
		if b, err := hex.DecodeString(k.Hash); err == nil && len(b) == 32 {
			copy(h[:], b)
			s.byHash[h] = k
		}
		s.byID[k.ID] = k
	}
	c.snap.Store(s)
	return s.byHash, s.byID, nil
}

func (c *keyCache) used(id string) {
	now := time.Now()
	c.mu.Lock()
	if c.lastUse == nil {
		c.lastUse = map[string]time.Time{}
	}
	c.lastUse[id] = now
	c.mu.Unlock()
}

func (c *keyCache) lastUsed(id string) *time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.lastUse[id]; ok {
		return &t
	}
	return nil
}

var errBadKey = fmt.Errorf("%w: unknown, revoked or expired API key", httpapi.ErrUnauthorized)

// Authenticate implements httpapi.Authenticator: the key's SHA-256 is
// looked up, and compared again in constant time.
func (n *Node) Authenticate(key string) (*httpapi.Identity, error) {
	byHash, _, err := n.keys.get()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(key))
	k, ok := byHash[h]
	if !ok {
		return nil, errBadKey
	}
	want, _ := hex.DecodeString(k.Hash)
	if subtle.ConstantTimeCompare(want, h[:]) != 1 || k.Expired(time.Now().UnixNano()) {
		return nil, errBadKey
	}
	return identity(k), nil
}

// KeyIdentity implements httpapi.Authenticator for requests another node
// authenticated and passed on: the key must still be valid here.
func (n *Node) KeyIdentity(id string) (*httpapi.Identity, error) {
	_, byID, err := n.keys.get()
	if err != nil {
		return nil, err
	}
	k, ok := byID[id]
	if !ok || k.Expired(time.Now().UnixNano()) {
		return nil, errBadKey
	}
	return identity(k), nil
}

func identity(k hlog.APIKey) *httpapi.Identity {
	return &httpapi.Identity{KeyID: k.ID, Name: k.Name, Admin: k.Admin, Grants: k.Grants}
}

// newKey returns a new API key: "hk_" and 32 random bytes, base64url.
func newKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return api.KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// CreateKey creates an API key; leader only. The key is in the answer and
// nowhere else: the cluster keeps its SHA-256.
func (n *Node) CreateKey(ctx context.Context, req api.KeyRequest) (api.Key, error) {
	rec, key, err := n.makeKey(req)
	if err != nil {
		return api.Key{}, err
	}
	if err := n.raft.CreateKey(&rec); err != nil {
		return api.Key{}, apiError(err)
	}
	n.log.Info("API key created", "key_id", rec.ID, "name", rec.Name, "admin", rec.Admin)
	out := n.toKey(rec)
	out.Key = key
	return out, nil
}

// makeKey draws a key for req and builds its record, checked as the FSM
// will check it.
func (n *Node) makeKey(req api.KeyRequest) (hlog.APIKey, string, error) {
	now := time.Now()
	rec := hlog.APIKey{
		ID:        api.KeyIDPrefix + n.ids.ulid(now),
		Name:      req.Name,
		Admin:     req.Admin,
		Grants:    req.Grants,
		CreatedAt: now.UnixNano(),
	}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			return rec, "", fmt.Errorf("%w: expires_at %s is not in the future", hlog.ErrInvalidKey, req.ExpiresAt.Format(time.RFC3339))
		}
		rec.ExpiresAt = req.ExpiresAt.UnixNano()
	}
	key, err := newKey()
	if err != nil {
		return rec, "", err
	}
	sum := sha256.Sum256([]byte(key))
	rec.Hash = hex.EncodeToString(sum[:])
	return rec, key, hlog.ValidateKey(&rec)
}

func (n *Node) toKey(k hlog.APIKey) api.Key {
	out := api.Key{ID: k.ID, Name: k.Name, Admin: k.Admin, Grants: k.Grants, CreatedAt: time.Unix(0, k.CreatedAt).UTC(), LastUsedAt: n.keys.lastUsed(k.ID)}
	if out.Grants == nil {
		out.Grants = []api.Grant{}
	}
	if k.ExpiresAt != 0 {
		t := time.Unix(0, k.ExpiresAt).UTC()
		out.ExpiresAt = &t
	}
	return out
}

// Keys lists the API keys (never the keys themselves), from this node.
func (n *Node) Keys(ctx context.Context) ([]api.Key, error) {
	keys, err := n.db.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]api.Key, 0, len(keys))
	for _, k := range keys {
		out = append(out, n.toKey(k))
	}
	return out, nil
}

// Key describes one API key.
func (n *Node) Key(ctx context.Context, id string) (api.Key, error) {
	k, err := n.db.Key(id)
	if err != nil {
		return api.Key{}, err
	}
	return n.toKey(k), nil
}

// RevokeKey deletes an API key on every node; leader only.
func (n *Node) RevokeKey(ctx context.Context, id string) error {
	if id == n.callerKey(ctx) {
		// Allowed, but worth a line in the log: the caller locks itself out.
		n.log.Warn("API key revoked by itself", "key_id", id)
	}
	if err := n.raft.DeleteKey(id); err != nil {
		return apiError(err)
	}
	n.log.Info("API key revoked", "key_id", id)
	return nil
}

func (n *Node) callerKey(ctx context.Context) string {
	if id := httpapi.IdentityFrom(ctx); id != nil {
		return id.KeyID
	}
	return ""
}

// ensureAdminKey runs on the leader: a cluster that never had a key (a
// new one, or one upgraded from a release without keys) gets one admin
// key in DATA/admin.key. The key goes to DATA/admin.key.tmp (fsynced)
// before it is proposed and is renamed into place once committed, so
// the file appears only when the key works, and a key the cluster knows
// is never lost: a crash between commit and rename leaves the temp file,
// which the next call puts in place. The path is logged, never the key.
func (n *Node) ensureAdminKey() error {
	if n.cfg.NoAuth {
		return nil
	}
	if n.adminKeyDone.Load() {
		return nil // the register loop asks every half second
	}
	n.adminKeyMu.Lock() // the register loop and StartLocalCluster
	defer n.adminKeyMu.Unlock()
	path := filepath.Join(n.cfg.DataDir, AdminKeyFile)
	tmp := path + ".tmp"
	done, err := n.db.KeysInitialized()
	if err != nil {
		return err
	}
	if done {
		if _, err := os.Stat(tmp); err == nil {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return commitFile(tmp, path)
			}
		}
		n.adminKeyDone.Store(true)
		return nil
	}
	rec, key, err := n.makeKey(api.KeyRequest{Name: "admin (first start)", Admin: true})
	if err != nil {
		return err
	}
	if err := writeSynced(tmp, []byte(key+"\n")); err != nil {
		return fmt.Errorf("writing the first admin key: %w", err)
	}
	if err := n.raft.CreateKey(&rec); err != nil {
		return err
	}
	if err := commitFile(tmp, path); err != nil {
		return err
	}
	n.log.Info("created the cluster's first admin key", "key_id", rec.ID, "file", path)
	return nil
}

// writeSynced writes data to path (0600) and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// commitFile renames tmp to path and fsyncs the directory.
func commitFile(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
