// Package secrets encrypts the secrets Herald keeps (subscription signing
// secrets, sensitive header values) so that their plaintext never reaches
// the event log, the Raft log, snapshots or backups.
//
// Two levels of keys, as envelope encryption goes: a master key, which
// lives only in a file on each node (DATA/secrets.key, or the operator's
// --secrets-key-file), wraps data keys; the wrapped data keys are
// replicated through Raft in the event log's keyring, and a value is
// sealed under the newest one. Rotating the data key (herald secrets
// rotate-key) is a Raft command and a re-seal of every value, with no
// downtime; whoever holds a backup and not the master key holds only
// ciphertext.
//
// Everything is XChaCha20-Poly1305 (golang.org/x/crypto) with random
// 24-byte nonces. A sealed value is bound to where it is used (the
// subscription id and the field) as additional data, so a ciphertext
// copied to another subscription does not open.
package secrets

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/herald-io/herald/internal/fsutil"
	"golang.org/x/crypto/chacha20poly1305"
)

// Prefix starts every sealed value: "hsec1." + base64url(key id (4 bytes,
// big-endian) | nonce (24) | ciphertext and tag).
const Prefix = "hsec1."

// KeyFilePrefix starts the master key file's one line.
const KeyFilePrefix = "hmk1_"

// KeySize is the size of master and data keys.
const KeySize = chacha20poly1305.KeySize

const (
	nonceSize    = chacha20poly1305.NonceSizeX
	tagSize      = chacha20poly1305.Overhead
	fpSize       = 8
	wrapVersion  = 1
	wrappedSize  = 1 + fpSize + nonceSize + KeySize + tagSize
	maxSealedRaw = 4 + nonceSize + 64<<10 + tagSize
)

// Errors.
var (
	// ErrMalformed: not a sealed value, or a wrapped key of the wrong form.
	ErrMalformed = errors.New("secrets: malformed sealed value")
	// ErrUnknownKey: sealed under a data key this keyring does not hold.
	ErrUnknownKey = errors.New("secrets: unknown data key")
	// ErrWrongMasterKey: a data key wrapped under another master key.
	ErrWrongMasterKey = errors.New("secrets: data key wrapped under another master key")
	// ErrOpen: the ciphertext does not open (damaged, or bound elsewhere).
	ErrOpen = errors.New("secrets: value does not decrypt")
	// ErrNoKey: the keyring holds no data key yet.
	ErrNoKey = errors.New("secrets: no data key yet")
)

// MasterKey wraps data keys.
type MasterKey [KeySize]byte

// Fingerprint names a master key without revealing it (hex, 16 chars).
func (m *MasterKey) Fingerprint() string {
	fp := m.fingerprint()
	return hex.EncodeToString(fp[:])
}

func (m *MasterKey) fingerprint() [fpSize]byte {
	h := sha256.New()
	h.Write([]byte("herald master key fingerprint\x00"))
	h.Write(m[:])
	var fp [fpSize]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// NewMasterKey returns a random master key.
func NewMasterKey() (MasterKey, error) {
	var m MasterKey
	_, err := rand.Read(m[:])
	return m, err
}

// DeriveMasterKey derives the master key from the cluster CA's private key
// (PEM): every member holds that key (it travels over the authenticated
// join), so every member derives the same master key without another
// hand-over, and a cluster upgraded from a release without encryption
// agrees on one without coordination. HKDF-SHA256 keeps the two keys
// independent in use: knowing the master key does not give the CA key.
func DeriveMasterKey(caKeyPEM []byte) (MasterKey, error) {
	var m MasterKey
	k, err := hkdf.Key(sha256.New, caKeyPEM, []byte("herald"), "herald secrets master key v1", KeySize)
	if err != nil {
		return m, err
	}
	copy(m[:], k)
	return m, nil
}

// ParseMasterKey reads the file form: "hmk1_" + base64 of 32 bytes.
func ParseMasterKey(text string) (MasterKey, error) {
	var m MasterKey
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, KeyFilePrefix) {
		return m, fmt.Errorf("secrets: a master key file holds %q followed by the base64 of %d bytes", KeyFilePrefix, KeySize)
	}
	raw, err := base64.StdEncoding.DecodeString(text[len(KeyFilePrefix):])
	if err != nil || len(raw) != KeySize {
		return m, fmt.Errorf("secrets: a master key file holds %q followed by the base64 of %d bytes", KeyFilePrefix, KeySize)
	}
	copy(m[:], raw)
	return m, nil
}

// String is the file form. It is the key: never log it.
func (m *MasterKey) String() string {
	return KeyFilePrefix + base64.StdEncoding.EncodeToString(m[:])
}

// ReadKeyFile reads a master key file.
func ReadKeyFile(path string) (MasterKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return MasterKey{}, err
	}
	m, err := ParseMasterKey(string(raw))
	if err != nil {
		return MasterKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteKeyFile writes m to path (0600) through a temporary file, so that
// a crash leaves either no file or the whole key.
func WriteKeyFile(path string, m MasterKey) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".secrets-key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(m.String() + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fsutil.SyncDir(dir) // best effort: the key file itself is synced
	return nil
}

func wrapAD(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("herald data key\x00"), id)
}

// Wrap seals data key dk (id id) under m.
func Wrap(m *MasterKey, id uint32, dk []byte) ([]byte, error) {
	if len(dk) != KeySize {
		return nil, fmt.Errorf("secrets: a data key has %d bytes", KeySize)
	}
	aead, err := chacha20poly1305.NewX(m[:])
	if err != nil {
		return nil, err
	}
	fp := m.fingerprint()
	out := make([]byte, 0, wrappedSize)
	out = append(out, wrapVersion)
	out = append(out, fp[:]...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, dk, wrapAD(id)), nil
}

// ValidateWrapped checks a wrapped data key's form (not its key).
func ValidateWrapped(w []byte) error {
	if len(w) != wrappedSize || w[0] != wrapVersion {
		return fmt.Errorf("%w: a wrapped data key is %d bytes of version %d", ErrMalformed, wrappedSize, wrapVersion)
	}
	return nil
}

// Unwrap opens a wrapped data key.
func Unwrap(m *MasterKey, id uint32, w []byte) ([]byte, error) {
	if err := ValidateWrapped(w); err != nil {
		return nil, err
	}
	fp := m.fingerprint()
	if subtle.ConstantTimeCompare(fp[:], w[1:1+fpSize]) != 1 {
		return nil, fmt.Errorf("%w (this node's is %s, the cluster's starts %s)", ErrWrongMasterKey, m.Fingerprint(), hex.EncodeToString(w[1:1+fpSize]))
	}
	aead, err := chacha20poly1305.NewX(m[:])
	if err != nil {
		return nil, err
	}
	nonce := w[1+fpSize : 1+fpSize+nonceSize]
	dk, err := aead.Open(nil, nonce, w[1+fpSize+nonceSize:], wrapAD(id))
	if err != nil {
		return nil, fmt.Errorf("%w: data key %d", ErrOpen, id)
	}
	return dk, nil
}

// Sealed is a parsed sealed value.
type Sealed struct {
	KeyID      uint32
	Nonce      []byte
	Ciphertext []byte // with the tag
}

// IsSealed reports whether s has the sealed form's prefix.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// Parse reads a sealed value's form.
func Parse(s string) (Sealed, error) {
	if !IsSealed(s) {
		return Sealed{}, fmt.Errorf("%w: no %q prefix", ErrMalformed, Prefix)
	}
	body := s[len(Prefix):]
	if base64.RawURLEncoding.DecodedLen(len(body)) > maxSealedRaw {
		return Sealed{}, fmt.Errorf("%w: too long", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Sealed{}, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	if len(raw) < 4+nonceSize+tagSize {
		return Sealed{}, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return Sealed{KeyID: binary.BigEndian.Uint32(raw), Nonce: raw[4 : 4+nonceSize], Ciphertext: raw[4+nonceSize:]}, nil
}

// SecretField is the field of a subscription's signing secrets.
const SecretField = "secret"

// HeaderField is the field of a sensitive header's value (any case).
func HeaderField(name string) string { return "header:" + strings.ToLower(name) }

// AD is the additional data that binds a value to its place: the
// subscription id and the field (SecretField, HeaderField).
func AD(subID, field string) []byte {
	return []byte("herald/" + subID + "/" + field)
}

// Keyring holds the unwrapped data keys. It is safe for concurrent use.
type Keyring struct {
	mu      sync.RWMutex
	master  MasterKey
	keys    map[uint32][]byte
	current uint32
}

// NewKeyring returns an empty keyring under master key m.
func NewKeyring(m MasterKey) *Keyring {
	return &Keyring{master: m, keys: map[uint32][]byte{}}
}

// Master returns the master key (for wrapping a new data key).
func (k *Keyring) Master() *MasterKey { return &k.master }

// Add unwraps and adds data key id; the highest id is the current one.
func (k *Keyring) Add(id uint32, wrapped []byte) error {
	dk, err := Unwrap(&k.master, id, wrapped)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[id] = dk
	if id > k.current {
		k.current = id
	}
	return nil
}

// Has reports whether data key id is loaded.
func (k *Keyring) Has(id uint32) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.keys[id]
	return ok
}

// Current is the id of the data key new values are sealed under (0: none).
func (k *Keyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Seal encrypts plaintext under the current data key, bound to ad.
func (k *Keyring) Seal(plaintext string, ad []byte) (string, error) {
	k.mu.RLock()
	id := k.current
	dk := k.keys[id]
	k.mu.RUnlock()
	if dk == nil {
		return "", ErrNoKey
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return "", err
	}
	raw := make([]byte, 4+nonceSize, 4+nonceSize+len(plaintext)+tagSize)
	binary.BigEndian.PutUint32(raw, id)
	if _, err := rand.Read(raw[4:]); err != nil {
		return "", err
	}
	raw = aead.Seal(raw, raw[4:4+nonceSize], []byte(plaintext), ad)
	return Prefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// Open decrypts a sealed value bound to ad.
func (k *Keyring) Open(sealed string, ad []byte) (string, error) {
	s, err := Parse(sealed)
	if err != nil {
		return "", err
	}
	k.mu.RLock()
	dk := k.keys[s.KeyID]
	k.mu.RUnlock()
	if dk == nil {
		return "", fmt.Errorf("%w: %d", ErrUnknownKey, s.KeyID)
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return "", err
	}
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, ad)
	if err != nil {
		return "", ErrOpen
	}
	return string(pt), nil
}

// NewDataKey returns a random data key.
func NewDataKey() ([]byte, error) {
	dk := make([]byte, KeySize)
	_, err := rand.Read(dk)
	return dk, err
}
