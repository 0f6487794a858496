package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/httpapi"
	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/raftstore"
)

// SecretsKeyFile is the file in the data dir that holds the master key
// of the secrets at rest (0600), unless Config.SecretsKeyFile names
// another.
const SecretsKeyFile = "secrets.key"

// ErrNoSecretsKey: a node of a cluster with operator certificates has no
// master key and cannot make one that the other members share.
var ErrNoSecretsKey = errors.New("node: no secrets master key: with --raft-tls-* certificates, give every node the same --secrets-key-file (a copy of the first node's DATA/secrets.key)")

// secretState is the node's side of the secrets at rest: the keyring
// (data keys unwrapped under the master key) and the leader's chores.
type secretState struct {
	ring     *secrets.Keyring
	mu       sync.Mutex // one keyring reload, one new data key at a time
	loaded   int        // data keys of the event log loaded so far
	warned   atomic.Bool
	migrated atomic.Bool // this leader has re-sealed every plaintext secret
}

// setupSecrets loads (or makes) the master key: the operator's
// --secrets-key-file; else DATA/secrets.key; else the one the enrollment
// answer handed over (a joining node); else one derived from the cluster
// CA's key, which every member holds (so every member of a cluster
// upgraded from a release without encryption derives the same one),
// written to DATA/secrets.key; else, with operator certificates, a
// random one for a node that forms a new cluster or is its only member.
func (n *Node) setupSecrets() error {
	path := n.cfg.SecretsKeyFile
	own := path == ""
	if own {
		path = filepath.Join(n.cfg.DataDir, SecretsKeyFile)
	}
	m, err := secrets.ReadKeyFile(path)
	switch {
	case err == nil:
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("node: secrets key: %w", err)
	case !own && !n.formsCluster():
		return fmt.Errorf("node: --secrets-key-file %s does not exist (copy the cluster's key there)", path)
	case own && n.enrolledKey != "":
		// Handed over with the certificate: the cluster's own key, which
		// need not be the one derived from the CA (a restored cluster's
		// is the old cluster's).
		if m, err = secrets.ParseMasterKey(n.enrolledKey); err != nil {
			return fmt.Errorf("node: the enrollment answer's secrets key: %w", err)
		}
		n.enrolledKey = ""
		if err := secrets.WriteKeyFile(path, m); err != nil {
			return fmt.Errorf("node: secrets key: %w", err)
		}
		n.log.Info("secrets master key received with the enrollment", "file", path, "fingerprint", m.Fingerprint())
	case own && n.tls.ca != nil:
		if m, err = secrets.DeriveMasterKey(n.tls.ca.KeyPEM); err != nil {
			return err
		}
		if err := secrets.WriteKeyFile(path, m); err != nil {
			return fmt.Errorf("node: secrets key: %w", err)
		}
		n.log.Info("secrets master key derived from the cluster CA", "file", path, "fingerprint", m.Fingerprint())
	case n.formsCluster() || (n.hasRaftState() && n.onlyMember()):
		if m, err = secrets.NewMasterKey(); err != nil {
			return err
		}
		if err := secrets.WriteKeyFile(path, m); err != nil {
			return fmt.Errorf("node: secrets key: %w", err)
		}
		n.log.Info("secrets master key created", "file", path, "fingerprint", m.Fingerprint())
	default:
		return ErrNoSecretsKey
	}
	n.secrets.ring = secrets.NewKeyring(m)
	return n.loadKeyring()
}

// formsCluster reports whether this start bootstraps a new cluster.
func (n *Node) formsCluster() bool { return !n.hasRaftState() && n.cfg.Bootstrap }

func (n *Node) hasRaftState() bool { return raftstore.HasState(n.cfg.DataDir) }

// loadKeyring unwraps the event log's data keys not loaded yet. A data
// key wrapped under another master key is reported (once) and left out:
// this node cannot then open the secrets sealed under it.
func (n *Node) loadKeyring() error {
	s := &n.secrets
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := n.db.DataKeys()
	if err != nil {
		return err
	}
	if len(keys) == s.loaded {
		return nil
	}
	for _, k := range keys {
		if s.ring.Has(k.ID) {
			continue
		}
		if err := s.ring.Add(k.ID, k.Wrapped); err != nil {
			if !s.warned.Swap(true) {
				n.log.Error("cannot open the cluster's data key: this node cannot decrypt signing secrets (is its secrets key the cluster's?)", "key", k.ID, "error", err)
			}
			return err
		}
	}
	s.loaded = len(keys)
	return nil
}

// newDataKey makes the data key after the highest one and commits it.
func (n *Node) newDataKey() (uint32, error) {
	if err := n.loadKeyring(); err != nil {
		return 0, err
	}
	s := &n.secrets
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := n.db.DataKeys()
	if err != nil {
		return 0, err
	}
	id := uint32(len(keys) + 1)
	if len(keys) > 0 {
		id = keys[len(keys)-1].ID + 1
	}
	dk, err := secrets.NewDataKey()
	if err != nil {
		return 0, err
	}
	w, err := secrets.Wrap(s.ring.Master(), id, dk)
	if err != nil {
		return 0, err
	}
	if err := n.raft.PutDataKey(hlog.DataKey{ID: id, Wrapped: w}); err != nil {
		return 0, apiError(err)
	}
	if err := s.ring.Add(id, w); err != nil {
		return 0, err
	}
	s.loaded++
	n.log.Info("data key added", "key", id)
	return id, nil
}

// ensureDataKey gives the cluster its first data key (leader only).
func (n *Node) ensureDataKey() error {
	if err := n.loadKeyring(); err != nil {
		return err
	}
	if n.secrets.ring.Current() != 0 {
		return nil
	}
	_, err := n.newDataKey()
	if errors.Is(err, hlog.ErrInvalidDataKey) {
		return n.loadKeyring() // another leader's came first
	}
	return err
}

// seal seals a value of subscription subID (field: secrets.SecretField
// or secrets.HeaderField) for the log, making the cluster's first data
// key if there is none.
func (n *Node) seal(subID, field, plain string) (string, error) {
	if err := n.ensureDataKey(); err != nil {
		return "", fmt.Errorf("%w: no data key to seal with: %v", httpapi.ErrUnavailable, err)
	}
	return n.secrets.ring.Seal(plain, secrets.AD(subID, field))
}

// openSealed returns the plaintext of a value stored for subscription
// subID in field (secrets.SecretField, secrets.HeaderField); a plaintext secret from a
// release before encryption is returned as it is.
func (n *Node) openSealed(subID, field, stored string) (string, error) {
	if !secrets.IsSealed(stored) {
		return stored, nil
	}
	p, err := secrets.Parse(stored)
	if err != nil {
		return "", err
	}
	if !n.secrets.ring.Has(p.KeyID) {
		if err := n.loadKeyring(); err != nil {
			return "", err
		}
	}
	return n.secrets.ring.Open(stored, secrets.AD(subID, field))
}

// sealHeaders prepares the headers of a create or update: every value
// named in sensitive is checked as plaintext and sealed; a sensitive
// header given with an empty value keeps the value cur (the subscription
// as it is, nil for a create) has for it.
func (n *Node) sealHeaders(subID string, cur *hlog.Subscription, headers map[string]string, sensitive []string) (map[string]string, error) {
	if len(sensitive) == 0 {
		return headers, nil
	}
	probe := hlog.Subscription{Headers: headers, SensitiveHeaders: sensitive}
	out := make(map[string]string, len(headers))
	for k, v := range headers {
		out[k] = v
	}
	for _, name := range sensitive {
		k, ok := probe.HeaderKey(name)
		if !ok {
			return nil, fmt.Errorf("%w: sensitive_headers: %.100q is not one of headers", hlog.ErrInvalidSubscription, name)
		}
		v := headers[k]
		if v == "" {
			var prev string
			if cur != nil && cur.IsSensitive(k) {
				if ck, ok := cur.HeaderKey(k); ok {
					prev = cur.Headers[ck]
				}
			}
			if prev == "" {
				return nil, fmt.Errorf("%w: headers: give the value of sensitive header %.100q (an empty value keeps one that is set already)", hlog.ErrInvalidSubscription, k)
			}
			out[k] = prev
			continue
		}
		if err := hlog.ValidateHeaderValue(k, v); err != nil {
			return nil, err
		}
		sealed, err := n.seal(subID, secrets.HeaderField(k), v)
		if err != nil {
			return nil, err
		}
		out[k] = sealed
	}
	return out, nil
}

// staleSealed lists what of s is not sealed under the current data key.
func (n *Node) staleSealed(s *hlog.Subscription) []hlog.Reseal {
	current := n.secrets.ring.Current()
	stale := func(v string) bool {
		p, err := secrets.Parse(v)
		return err != nil || p.KeyID != current
	}
	var rs []hlog.Reseal
	for i, sec := range s.Secrets {
		if stale(sec.Key) {
			rs = append(rs, hlog.Reseal{Index: i, Old: sec.Key})
		}
	}
	for k, v := range s.Headers {
		if s.IsSensitive(k) && stale(v) {
			rs = append(rs, hlog.Reseal{Header: k, Old: v})
		}
	}
	return rs
}

// resealAll re-seals, under the current data key, every secret that is
// plaintext or sealed under an older key (signing secrets and sensitive
// header values), and returns how many subscriptions changed (leader
// only).
func (n *Node) resealAll() (int, error) {
	subs, err := n.db.Subscriptions("")
	if err != nil {
		return 0, err
	}
	if err := n.loadKeyring(); err != nil {
		return 0, err
	}
	todo := 0
	for i := range subs {
		if len(n.staleSealed(&subs[i])) > 0 {
			todo++
		}
	}
	if todo == 0 {
		return 0, nil // nothing to seal: no data key is made before one is needed
	}
	if err := n.ensureDataKey(); err != nil {
		return 0, err
	}
	count := 0
	for i := range subs {
		s := &subs[i]
		rs := n.staleSealed(s)
		if len(rs) == 0 {
			continue
		}
		for j := range rs {
			field := secrets.SecretField
			if rs[j].Header != "" {
				field = secrets.HeaderField(rs[j].Header)
			}
			plain, err := n.openSealed(s.ID, field, rs[j].Old)
			if err != nil {
				return count, fmt.Errorf("subscription %s: %w", s.ID, err)
			}
			if rs[j].New, err = n.secrets.ring.Seal(plain, secrets.AD(s.ID, field)); err != nil {
				return count, err
			}
		}
		_, err := n.raft.ResealSecrets(s.ID, rs, time.Now().UTC())
		switch {
		case errors.Is(err, hlog.ErrResealConflict), errors.Is(err, hlog.ErrSubscriptionNotFound):
			continue // changed or deleted meanwhile: its new values are sealed already
		case err != nil:
			return count, apiError(err)
		}
		count++
	}
	return count, nil
}

// secretChores runs on the leader with the other registration chores:
// the first data key, then (once per leadership) re-sealing the
// plaintext secrets of a release before encryption.
func (n *Node) secretChores() {
	if n.secrets.migrated.Load() {
		return
	}
	count, err := n.resealAll()
	if err != nil {
		n.log.Warn("secrets not re-sealed yet", "error", err)
		return
	}
	if count > 0 {
		n.log.Info("signing secrets re-sealed under the current data key", "subscriptions", count)
	}
	n.secrets.migrated.Store(true)
}

// RotateSecretsKey adds a new data key and re-seals every secret under
// it (leader only): a Raft command per subscription, no downtime. The
// older data keys stay in the keyring (they are wrapped; older backups
// need them).
func (n *Node) RotateSecretsKey(ctx context.Context) (api.SecretsKeyRotation, error) {
	if err := n.leaderWrite(); err != nil {
		return api.SecretsKeyRotation{}, err
	}
	id, err := n.newDataKey()
	if err != nil {
		return api.SecretsKeyRotation{}, err
	}
	count, err := n.resealAll()
	if err != nil {
		return api.SecretsKeyRotation{}, err
	}
	n.log.Info("data key rotated", "key", id, "resealed", count)
	return api.SecretsKeyRotation{KeyID: id, Resealed: count, MasterKey: n.secrets.ring.Master().Fingerprint()}, nil
}
