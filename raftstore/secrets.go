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

func encodeReseal(id string, rs []hlog.Reseal, now int64) []byte {
	b := wire.AppendString(header(cmdReseal), id)
	b = wire.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = wire.AppendString(b, r.Header)
		b = wire.AppendUvarint(b, uint64(r.Index))
		b = wire.AppendString(b, r.Old)
		b = wire.AppendString(b, r.New)
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
		if r.Err() != nil || n > hlog.MaxSecrets+hlog.MaxHeaders {
			return nil, fmt.Errorf("%w: reseal: %v (%d values)", ErrBadCommand, r.Err(), n)
		}
		rs := make([]hlog.Reseal, n)
		for i := range rs {
			rs[i].Header = r.String()
			idx := r.Uvarint()
			if idx > hlog.MaxSecrets {
				return nil, fmt.Errorf("%w: reseal: secret index %d", ErrBadCommand, idx)
			}
			rs[i].Index = int(idx)
			rs[i].Old, rs[i].New = r.String(), r.String()
		}
		now := int64(r.Uint64())
		if r.Err() != nil {
			return nil, fmt.Errorf("%w: reseal: %v", ErrBadCommand, r.Err())
		}
		res.Sub, err = tx.ResealSecrets(id, rs, now)
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

// ResealSecrets replaces sealed values of subscription id;
// hlog.ErrResealConflict when one is no longer what it was.
func (s *Store) ResealSecrets(id string, rs []hlog.Reseal, now time.Time) (hlog.Subscription, error) {
	res, err := s.applySub(encodeReseal(id, rs, now.UnixNano()))
	return res.Sub, err
}
