package wire

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, 300)
	b = AppendString(b, "store/order/created")
	b = AppendBytes(b, []byte{1, 2, 3})
	b = AppendUint64(b, 1<<40+7)
	b = append(b, 9)
	r := NewReader(b)
	if got := r.Uvarint(); got != 300 {
		t.Fatalf("uvarint = %d", got)
	}
	if got := r.String(); got != "store/order/created" {
		t.Fatalf("string = %q", got)
	}
	if got := r.Bytes(); len(got) != 3 || got[2] != 3 {
		t.Fatalf("bytes = %v", got)
	}
	if got := r.Uint64(); got != 1<<40+7 {
		t.Fatalf("uint64 = %d", got)
	}
	if got := r.Byte(); got != 9 {
		t.Fatalf("byte = %d", got)
	}
	if r.Err() != nil || r.Len() != 0 {
		t.Fatalf("err=%v len=%d", r.Err(), r.Len())
	}
}

func TestShortInputSticks(t *testing.T) {
	b := AppendString(nil, "hello")
	r := NewReader(b[:3])
	if s := r.String(); s != "" {
		t.Fatalf("got %q from a short buffer", s)
	}
	if !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("err = %v, want ErrShort", r.Err())
	}
	if v := r.Uint64(); v != 0 {
		t.Fatalf("read after error returned %d", v)
	}
}
