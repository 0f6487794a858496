// Package wire holds the small binary encoding helpers shared by Herald's
// on-disk event records (package log) and its Raft commands (package
// raftstore): unsigned varints and length-prefixed byte strings.
//
// A Reader never panics on malformed input: the first error sticks and every
// later read returns a zero value, so callers check Err once at the end.
package wire

import (
	"encoding/binary"
	"errors"
)

// ErrShort is returned when a buffer ends before the value being read.
var ErrShort = errors.New("wire: buffer too short")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendBytes appends p prefixed with its length.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendString appends s prefixed with its length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendUint64 appends v as 8 big-endian bytes.
func AppendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// Reader decodes values written by the Append functions.
type Reader struct {
	buf []byte
	err error
}

// NewReader returns a Reader over b. It does not copy b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.buf) < 1 {
		r.err = ErrShort
		return 0
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// Uint64 reads 8 big-endian bytes.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.buf) < 8 {
		r.err = ErrShort
		return 0
	}
	v := binary.BigEndian.Uint64(r.buf)
	r.buf = r.buf[8:]
	return v
}

// Bytes reads a length-prefixed byte string. The result aliases the
// Reader's buffer: copy it if the buffer does not outlive the use.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.buf)) < n {
		r.err = ErrShort
		return nil
	}
	p := r.buf[:n:n]
	r.buf = r.buf[n:]
	return p
}

// String reads a length-prefixed string (always a copy).
func (r *Reader) String() string { return string(r.Bytes()) }
