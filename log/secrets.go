package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/herald-io/herald/internal/secrets"
	bolt "go.etcd.io/bbolt"
)

// bucketKeyring maps a data key id (uint32, big-endian) to the data key
// wrapped under the cluster's master key (internal/secrets). Only wrapped
// keys are stored: the event log, and so snapshots and backups, hold
// ciphertext and wrapped keys, never a key that opens them.
var bucketKeyring = []byte("keyring")

// MaxDataKeys bounds the keyring (one key per herald secrets rotate-key).
const MaxDataKeys = 1000

var (
	// ErrInvalidDataKey means a data key command broke the keyring's
	// rules (ids go up by one; the wrapped form is fixed).
	ErrInvalidDataKey = errors.New("invalid data key")
	// ErrResealConflict means a re-seal found other secrets than those it
	// was made for (rotated meanwhile): nothing changed, make it again.
	ErrResealConflict = errors.New("secrets changed meanwhile")
)

// DataKey is one entry of the keyring.
type DataKey struct {
	ID      uint32
	Wrapped []byte
}

// ValidateStoredSecret checks a secret as the log stores it: sealed
// (internal/secrets), or a plaintext "whsec_" secret from a release
// before encryption, which the leader re-seals.
func ValidateStoredSecret(s string) error {
	if secrets.IsSealed(s) {
		if _, err := secrets.Parse(s); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidSubscription, err)
		}
		return nil
	}
	return ValidateSecret(s)
}

// PutDataKey adds a data key: its id must be one more than the highest.
func (t *Tx) PutDataKey(k DataKey) error {
	if err := secrets.ValidateWrapped(k.Wrapped); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidDataKey, err)
	}
	b, err := t.tx.CreateBucketIfNotExists(bucketKeyring)
	if err != nil {
		return err
	}
	var last uint32
	if c, _ := b.Cursor().Last(); c != nil {
		last = binary.BigEndian.Uint32(c)
	}
	if k.ID != last+1 {
		return fmt.Errorf("%w: data key %d after %d", ErrInvalidDataKey, k.ID, last)
	}
	if k.ID > MaxDataKeys {
		return fmt.Errorf("%w: at most %d data keys", ErrInvalidDataKey, MaxDataKeys)
	}
	return b.Put(binary.BigEndian.AppendUint32(nil, k.ID), slices.Clone(k.Wrapped))
}

// DataKeys returns the keyring, oldest first.
func (d *DB) DataKeys() ([]DataKey, error) {
	var out []DataKey
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeyring)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				return fmt.Errorf("%w: keyring key of %d bytes", ErrCorrupt, len(k))
			}
			out = append(out, DataKey{ID: binary.BigEndian.Uint32(k), Wrapped: slices.Clone(v)})
			return nil
		})
	})
	return out, err
}

// Reseal is one value to replace: the secret at Index (Header "") or the
// sensitive header Header, whose stored value must still be Old.
type Reseal struct {
	Header string
	Index  int
	Old    string
	New    string
}

// ResealSecrets replaces sealed values of subscription id (its secret
// keys, keeping each one's expiry, and sensitive header values): the
// leader's re-seal under a new data key, or of a plaintext secret from an
// older release. If any value is no longer Old, nothing changes
// (ErrResealConflict).
func (t *Tx) ResealSecrets(id string, rs []Reseal, now int64) (Subscription, error) {
	s, err := t.getSub(id)
	if err != nil {
		return s, err
	}
	conflict := fmt.Errorf("%w: %s", ErrResealConflict, id)
	for _, r := range rs {
		if r.Header == "" {
			if r.Index < 0 || r.Index >= len(s.Secrets) || s.Secrets[r.Index].Key != r.Old {
				return Subscription{}, conflict
			}
			if err := ValidateStoredSecret(r.New); err != nil {
				return Subscription{}, err
			}
			s.Secrets[r.Index].Key = r.New
			continue
		}
		k, ok := s.HeaderKey(r.Header)
		if !ok || !s.IsSensitive(k) || s.Headers[k] != r.Old {
			return Subscription{}, conflict
		}
		s.Headers[k] = r.New
	}
	if err := s.Validate(); err != nil {
		return Subscription{}, err
	}
	return s, t.apiChange(&s, now)
}
