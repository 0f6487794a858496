package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// TokenPrefix starts every join token.
const TokenPrefix = "hjt_"

// tokenVersion is the first byte of a token's payload.
const tokenVersion = 1

// tokenLen is the length of a token's payload: version, fingerprint,
// secret.
const tokenLen = 1 + 32 + 32

// Token is a one-time join token: the fingerprint of the cluster CA's
// certificate, which a new node pins, and a random secret, of which the
// cluster keeps only the hash (SecretHash).
type Token struct {
	Fingerprint [32]byte
	Secret      [32]byte
}

// NewToken creates a token for the CA with fingerprint and a secret from
// crypto/rand.
func NewToken(fingerprint [32]byte) (Token, error) {
	t := Token{Fingerprint: fingerprint}
	if _, err := rand.Read(t.Secret[:]); err != nil {
		return Token{}, err
	}
	return t, nil
}

// String encodes the token: TokenPrefix followed by the unpadded
// base64url encoding of the version byte (1), the fingerprint and the
// secret. It holds the secret: treat it as one.
func (t Token) String() string {
	b := make([]byte, 0, tokenLen)
	b = append(b, tokenVersion)
	b = append(b, t.Fingerprint[:]...)
	b = append(b, t.Secret[:]...)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseToken decodes a token made by Token.String. It is strict: exactly
// the prefix and the canonical encoding of a version 1 payload, nothing
// around them (callers trim input themselves). Errors wrap ErrBadToken
// and never contain s.
func ParseToken(s string) (Token, error) {
	body, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: it does not start with %q", ErrBadToken, TokenPrefix)
	}
	// The length check also refuses the line breaks that the base64
	// decoder would skip.
	if len(body) != base64.RawURLEncoding.EncodedLen(tokenLen) {
		return Token{}, fmt.Errorf("%w: wrong length", ErrBadToken)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(b) != tokenLen {
		return Token{}, fmt.Errorf("%w: not base64url", ErrBadToken)
	}
	if b[0] != tokenVersion {
		return Token{}, fmt.Errorf("%w: unsupported version", ErrBadToken)
	}
	var t Token
	copy(t.Fingerprint[:], b[1:33])
	copy(t.Secret[:], b[33:])
	return t, nil
}

// HashSecret returns the SHA-256 of a token secret: what the cluster
// stores and compares instead of the secret.
func HashSecret(secret [32]byte) [32]byte { return sha256.Sum256(secret[:]) }

// SecretHash returns HashSecret of the token's secret.
func (t Token) SecretHash() [32]byte { return HashSecret(t.Secret) }
