package wire

import (
	"reflect"
	"testing"
)

// readAll reads r as the fields ops name (op % 5: byte, uvarint, uint64,
// bytes, string) and returns the values read before any error.
func readAll(t *testing.T, r *Reader, ops []byte) []any {
	var vals []any
	last := r.Len()
	for _, op := range ops {
		failed := r.Err() != nil
		var v any
		switch op % 5 {
		case 0:
			v = r.Byte()
		case 1:
			v = r.Uvarint()
		case 2:
			v = r.Uint64()
		case 3:
			b := r.Bytes()
			if b == nil && r.Err() != nil {
				v = []byte(nil)
			} else {
				v = append([]byte{}, b...)
			}
		case 4:
			v = r.String()
		}
		if r.Err() != nil && !reflect.ValueOf(v).IsZero() {
			t.Fatalf("op %d after an error returned %v", op%5, v)
		}
		if failed && r.Err() == nil {
			t.Fatal("an error was cleared")
		}
		if r.Len() > last {
			t.Fatalf("Len grew from %d to %d", last, r.Len())
		}
		last = r.Len()
		if r.Err() == nil {
			vals = append(vals, v)
		}
	}
	return vals
}

// FuzzReader reads arbitrary bytes as a sequence of fields chosen by ops:
// no panic, Len never grows, once an error is set every read returns the
// zero value and the error stays; and what was read, written again with
// the Append functions, reads back the same.
func FuzzReader(f *testing.F) {
	var b []byte
	b = AppendUvarint(b, 300)
	b = AppendString(b, "store/order/created")
	b = AppendBytes(b, []byte{0, 1, 2})
	b = AppendUint64(b, 1<<63)
	b = append(b, 7)
	f.Add([]byte{1, 4, 3, 2, 0}, b)
	f.Add([]byte{1}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{3}, []byte{0x80})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, ops, data []byte) {
		vals := readAll(t, NewReader(data), ops)
		// Re-encode with the op each value came from.
		var out []byte
		i := 0
		for _, op := range ops {
			if i == len(vals) {
				break
			}
			switch op % 5 {
			case 0:
				out = append(out, vals[i].(byte))
			case 1:
				out = AppendUvarint(out, vals[i].(uint64))
			case 2:
				out = AppendUint64(out, vals[i].(uint64))
			case 3:
				out = AppendBytes(out, vals[i].([]byte))
			case 4:
				out = AppendString(out, vals[i].(string))
			}
			i++
		}
		again := readAll(t, NewReader(out), ops[:len(vals)])
		if !reflect.DeepEqual(again, vals) {
			t.Fatalf("re-encoded values read back as %v, not %v", again, vals)
		}
	})
}
