package log

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/wire"
)

// Limits on event fields.
const (
	MaxStoreLen   = 64
	MaxTypeLen    = 128
	MaxIDLen      = 128
	MaxVersionLen = 32
	MaxKeyLen     = 255
)

// Event is one stored event: the wire type itself, so the log's records
// go out as they are. Data holds the client's JSON value byte for byte;
// write an event with its AppendJSON (encoding/json would compact Data).
type Event = api.Event

// NewEvent is an event to append, fully decided before it reaches the FSM:
// the id and timestamp are assigned by the node that accepted it.
type NewEvent struct {
	ID        string
	Type      string
	Version   string
	Timestamp int64 // unix nanoseconds, UTC
	Data      []byte
	// IdempotencyKey, when set, makes a later append carrying the same key
	// in the same store return the original event.
	IdempotencyKey string
}

// ErrReservedStore means a client tried to publish to HeraldStore, which
// only Herald writes.
var ErrReservedStore = errors.New("reserved store")

// ValidateStoreName reports whether name is a valid store name:
// [a-z0-9][a-z0-9._-]{0,63}, or HeraldStore (which only Herald writes).
func ValidateStoreName(name string) error {
	if name == HeraldStore {
		return nil
	}
	if name == "" || len(name) > MaxStoreLen {
		return fmt.Errorf("%w: %.100q must be 1-%d characters", ErrInvalidStore, name, MaxStoreLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == '-'
		}
		if !ok {
			return fmt.Errorf("%w: %.100q must match [a-z0-9][a-z0-9._-]{0,63}", ErrInvalidStore, name)
		}
	}
	return nil
}

// charset is a set of allowed ASCII bytes.
type charset [256]bool

func newCharset(extra string) *charset {
	var cs charset
	for c := 'a'; c <= 'z'; c++ {
		cs[c] = true
		cs[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		cs[c] = true
	}
	for i := 0; i < len(extra); i++ {
		cs[extra[i]] = true
	}
	return &cs
}

var (
	typeChars    = newCharset("._/-")
	idChars      = newCharset("._:-")
	versionChars = newCharset("._-")
)

// checkField checks that s has 1-max characters, all from cs.
func checkField(field, s string, max int, cs *charset, class string) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s must be 1-%d characters", ErrInvalidEvent, field, max)
	}
	for i := 0; i < len(s); i++ {
		if !cs[s[i]] {
			return fmt.Errorf("%w: %s %.100q may contain only %s", ErrInvalidEvent, field, s, class)
		}
	}
	return nil
}

// ValidateType checks an event type: 1-128 characters from [A-Za-z0-9._/-].
func ValidateType(t string) error {
	return checkField("type", t, MaxTypeLen, typeChars, "[A-Za-z0-9._/-]")
}

// ValidateID checks a client-supplied event id: 1-128 characters from
// [A-Za-z0-9._:-].
func ValidateID(id string) error {
	return checkField("id", id, MaxIDLen, idChars, "[A-Za-z0-9._:-]")
}

// ValidateVersion checks a payload schema version: 1-32 characters from
// [A-Za-z0-9._-].
func ValidateVersion(v string) error {
	return checkField("version", v, MaxVersionLen, versionChars, "[A-Za-z0-9._-]")
}

// ValidateIdempotencyKey checks an Idempotency-Key: 1-255 printable ASCII
// characters.
func ValidateIdempotencyKey(k string) error {
	if k == "" || len(k) > MaxKeyLen {
		return fmt.Errorf("%w: idempotency key must be 1-%d characters", ErrInvalidEvent, MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return fmt.Errorf("%w: idempotency key must be printable ASCII without spaces", ErrInvalidEvent)
		}
	}
	return nil
}

// Validate checks everything about ev, including that Data is valid JSON.
// The accepting node runs it before proposing the event.
func (ev *NewEvent) Validate() error {
	if err := ev.validateFields(); err != nil {
		return err
	}
	if !json.Valid(ev.Data) {
		return fmt.Errorf("%w: data must be a JSON value", ErrInvalidEvent)
	}
	if !utf8.Valid(ev.Data) {
		// encoding/json accepts invalid UTF-8 inside strings; receivers
		// and other JSON parsers may not.
		return fmt.Errorf("%w: data is not valid UTF-8", ErrInvalidEvent)
	}
	return nil
}

// validateFields checks everything but the JSON validity of Data: what
// Tx.Append re-checks on every replica. It is pure, so every node reaches
// the same verdict. Re-parsing the data on every replica would triple the
// cost of an append for nothing: the accepting node validated it, and the
// log stores it as bytes.
func (ev *NewEvent) validateFields() error {
	if err := ValidateID(ev.ID); err != nil {
		return err
	}
	if err := ValidateType(ev.Type); err != nil {
		return err
	}
	if err := ValidateVersion(ev.Version); err != nil {
		return err
	}
	if ev.IdempotencyKey != "" {
		if err := ValidateIdempotencyKey(ev.IdempotencyKey); err != nil {
			return err
		}
	}
	if ev.Timestamp <= 0 {
		return fmt.Errorf("%w: missing timestamp", ErrInvalidEvent)
	}
	if len(ev.Data) == 0 {
		return fmt.Errorf("%w: data must be a JSON value", ErrInvalidEvent)
	}
	return nil
}

// chainHash computes the event's hash: SHA-256 over the previous event's
// hash (32 zero bytes for seq 1) and the canonical fields, each
// length-prefixed so no two field lists encode alike.
func chainHash(prev [32]byte, store string, seq uint64, ev *NewEvent) [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 128)
	buf = append(buf, prev[:]...)
	buf = wire.AppendString(buf, store)
	buf = wire.AppendUint64(buf, seq)
	buf = wire.AppendString(buf, ev.ID)
	buf = wire.AppendString(buf, ev.Type)
	buf = wire.AppendUint64(buf, uint64(ev.Timestamp))
	buf = wire.AppendString(buf, ev.Version)
	buf = wire.AppendUvarint(buf, uint64(len(ev.Data)))
	h.Write(buf)
	h.Write(ev.Data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// HashHex renders a hash as lowercase hex.
func HashHex(h [32]byte) string { return hex.EncodeToString(h[:]) }

// record encoding (value under the seq key): version byte, id, type,
// version, timestamp, hash, data.
const recordV1 = 1

func encodeRecord(ev *NewEvent, hash [32]byte) []byte {
	b := make([]byte, 0, 64+len(ev.ID)+len(ev.Type)+len(ev.Data))
	b = append(b, recordV1)
	b = wire.AppendString(b, ev.ID)
	b = wire.AppendString(b, ev.Type)
	b = wire.AppendString(b, ev.Version)
	b = wire.AppendUint64(b, uint64(ev.Timestamp))
	b = append(b, hash[:]...)
	return append(b, ev.Data...)
}

// decodeRecord decodes a stored record; data is copied out of v so the
// event outlives the transaction.
func decodeRecord(store string, seq uint64, v []byte) (Event, [32]byte, error) {
	var hash [32]byte
	r := wire.NewReader(v)
	if r.Byte() != recordV1 {
		return Event{}, hash, fmt.Errorf("%w: store %s seq %d: unknown record version", ErrCorrupt, store, seq)
	}
	ev := Event{Store: store, Seq: seq}
	ev.ID = r.String()
	ev.Type = r.String()
	ev.Version = r.String()
	ts := int64(r.Uint64())
	for i := range hash {
		hash[i] = r.Byte()
	}
	if r.Err() != nil {
		return Event{}, hash, fmt.Errorf("%w: store %s seq %d: %v", ErrCorrupt, store, seq, r.Err())
	}
	rest := v[len(v)-r.Len():]
	ev.Data = append(json.RawMessage(nil), rest...)
	ev.Timestamp = time.Unix(0, ts).UTC()
	ev.Hash = HashHex(hash)
	return ev, hash, nil
}
