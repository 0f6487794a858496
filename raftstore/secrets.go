package raftstore

import (
	"fmt"
	"time"

	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

// Secrets-at-rest commands. The values they carry are already sealed (or
// wrapped) by the leader: no plaintext secret enters the Raft log.
const (
	cmdPutDataKey cmdType = 17 // add a wrapped data key to the keyring
	cmdReseal     cmdType = 18 // replace a subscription's sealed secrets (compare and swap)
)

func encodePutDataKey(k hlog.DataKey) []byte {
	b := wire.AppendUvarint(header(cmdPutDataKey), uint64(k.ID))
	return wire.AppendBytes(b, k.Wrapped)
}

func encodeReseal(id string, old, next []string, now int64) []byte {
	b := wire.AppendString(header(cmdReseal), id)
	b = wire.AppendUvarint(b, uint64(len(old)))
	for i := range old {
		b = wire.AppendString(b, old[i])
		b = wire.AppendString(b, next[i])
	}
	return wire.AppendUint64(b, uint64(now))
}

// applySecretsCommand applies the keyring and re-seal commands.
func applySecretsCommand(tx *hlog.Tx, t cmdType, r *wire.Reader) (interface{}, error) {
	var res SubResult
	var err error
	switch t {
	case cmdPutDataKey:
		id, wrapped := r.Uvarint(), r.Bytes()
		if r.Err() != nil || id > 1<<32-1 {
			return nil, fmt.Errorf("%w: put data key: %v", ErrBadCommand, r.Err())
		}
		err = tx.PutDataKey(hlog.DataKey{ID: uint32(id), Wrapped: wrapped})
	case cmdReseal:
		id, n := r.String(), r.Uvarint()
		if r.Err() != nil || n > hlog.MaxSecrets {
			return nil, fmt.Errorf("%w: reseal: %v (%d secrets)", ErrBadCommand, r.Err(), n)
		}
		old, next := make([]string, n), make([]string, n)
		for i := range old {
			old[i], next[i] = r.String(), r.String()
		}
		now := int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: reseal: %v", ErrBadCommand, r.Err())
		}
		res.Sub, err = tx.ResealSecrets(id, old, next, now)
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrBadCommand, t)
	}
	if err != nil {
		if !clientError(err) {
			return nil, err
		}
		res.Err = err
	}
	return res, nil
}

// PutDataKey adds a wrapped data key to every node's keyring;
// hlog.ErrInvalidDataKey when its id is not the next one.
func (s *Store) PutDataKey(k hlog.DataKey) error {
	_, err := s.applySub(encodePutDataKey(k))
	return err
}

// ResealSecrets replaces subscription id's secret keys old with next;
// hlog.ErrResealConflict when they are no longer old.
func (s *Store) ResealSecrets(id string, old, next []string, now time.Time) (hlog.Subscription, error) {
	res, err := s.applySub(encodeReseal(id, old, next, now.UnixNano()))
	return res.Sub, err
}
