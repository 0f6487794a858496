package delivery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed request.
const (
	HeaderID            = "webhook-id"
	HeaderTimestamp     = "webhook-timestamp"
	HeaderSignature     = "webhook-signature"
	HeaderBodySignature = "X-Herald-Signature"

	// SecretPrefix starts every signing secret.
	SecretPrefix = "whsec_"
	// DefaultTolerance is how far a request's timestamp may be from the
	// receiver's clock when Verify is given no tolerance.
	DefaultTolerance = 5 * time.Minute

	minKeyLen = 24
	maxKeyLen = 64
)

// Errors from ParseSecret and Verify.
var (
	ErrInvalidSecret  = errors.New("invalid webhook secret")
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrBadTimestamp   = errors.New("malformed webhook-timestamp header")
	ErrTooOld         = errors.New("webhook timestamp too old")
	ErrTooNew         = errors.New("webhook timestamp too new")
	ErrNoMatch        = errors.New("no matching webhook signature")
)

// NewSecret returns a new signing secret: "whsec_" + base64 of 32 random
// bytes.
func NewSecret() (string, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// ParseSecret returns the key bytes of a "whsec_..." secret (the prefix is
// optional). Keys must be 24-64 bytes.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 after %q", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d-%d", ErrInvalidSecret, len(key), minKeyLen, maxKeyLen)
	}
	return key, nil
}

// Sign returns one Standard Webhooks signature, "v1,<base64>", of a message
// id, a unix timestamp and a body.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignatureHeader is the webhook-signature value for every key (the
// current one first, then those still in their rotation grace period).
func SignatureHeader(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Sign(k, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}

// BodySignature is the X-Herald-Signature value: "sha256=" + hex of the
// HMAC-SHA256 of the raw body.
func BodySignature(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SetHeaders sets the signature headers of a request Herald sends: the
// Standard Webhooks three (one signature per key) and X-Herald-Signature
// with the first (current) key.
func SetHeaders(h http.Header, keys [][]byte, id string, at time.Time, body []byte) {
	ts := at.Unix()
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, SignatureHeader(keys, id, ts, body))
	if len(keys) > 0 {
		h.Set(HeaderBodySignature, BodySignature(keys[0], body))
	}
}

// Verify checks a request Herald sent: secret is the subscription's
// "whsec_..." secret, header the request's headers, body its raw body.
// The timestamp must be within tolerance of now (DefaultTolerance when 0).
// Any one matching v1 signature among those listed is enough.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	at := time.Unix(ts, 0)
	if now.Sub(at) > tolerance {
		return fmt.Errorf("%w: %v old", ErrTooOld, now.Sub(at).Round(time.Second))
	}
	if at.Sub(now) > tolerance {
		return fmt.Errorf("%w: %v ahead", ErrTooNew, at.Sub(now).Round(time.Second))
	}
	want := []byte(Sign(key, id, ts, body))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrNoMatch
}
