package raftstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

// API key and join token commands.
const (
	cmdCreateKey   cmdType = 13 // store an API key (its hash)
	cmdDeleteKey   cmdType = 14 // revoke an API key
	cmdCreateToken cmdType = 15 // record a join token's secret hash
	cmdUseToken    cmdType = 16 // consume a join token
)

func encodeCreateKey(k *hlog.APIKey) []byte {
	js, err := json.Marshal(k)
	if err != nil {
		panic(err) // plain data
	}
	return wire.AppendBytes(header(cmdCreateKey), js)
}

func encodeToken(t cmdType, hash string, expiresAt, now int64) []byte {
	b := wire.AppendString(header(t), hash)
	b = wire.AppendUint64(b, uint64(expiresAt))
	return wire.AppendUint64(b, uint64(now))
}

// applyKeyCommand applies the key and token commands; client-level errors
// (hlog.ErrInvalidKey, ErrKeyExists, ErrKeyNotFound, ErrInvalidJoinToken)
// are the result, the same on every replica.
func applyKeyCommand(tx *hlog.Tx, t cmdType, r *wire.Reader) (interface{}, error) {
	var err error
	switch t {
	case cmdCreateKey:
		js := r.Bytes()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: create key: %v", ErrBadCommand, r.Err())
		}
		var k hlog.APIKey
		if jerr := json.Unmarshal(js, &k); jerr != nil {
			return nil, fmt.Errorf("%w: create key: %v", ErrBadCommand, jerr)
		}
		err = tx.CreateKey(k)
	case cmdDeleteKey:
		id := r.String()
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: delete key: %v", ErrBadCommand, r.Err())
		}
		err = tx.DeleteKey(id)
	case cmdCreateToken, cmdUseToken:
		hash := r.String()
		expires, now := int64(r.Uint64()), int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: join token: %v", ErrBadCommand, r.Err())
		}
		if t == cmdCreateToken {
			err = tx.CreateJoinToken(hash, expires, now)
		} else {
			err = tx.UseJoinToken(hash, now)
		}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrBadCommand, t)
	}
	if err != nil && !clientError(err) {
		return nil, err
	}
	return SubResult{Err: err}, nil
}

// CreateKey stores an API key record (its hash, never the key).
func (s *Store) CreateKey(k *hlog.APIKey) error {
	_, err := s.applySub(encodeCreateKey(k))
	return err
}

// DeleteKey revokes the API key id on every node.
func (s *Store) DeleteKey(id string) error {
	_, err := s.applySub(wire.AppendString(header(cmdDeleteKey), id))
	return err
}

// CreateJoinToken records a join token's secret hash (hex) until expires.
func (s *Store) CreateJoinToken(hash string, expires, now time.Time) error {
	_, err := s.applySub(encodeToken(cmdCreateToken, hash, expires.UnixNano(), now.UnixNano()))
	return err
}

// UseJoinToken consumes a join token: hlog.ErrInvalidJoinToken when it is
// unknown, used or expired at now.
func (s *Store) UseJoinToken(hash string, now time.Time) error {
	_, err := s.applySub(encodeToken(cmdUseToken, hash, 0, now.UnixNano()))
	return err
}
