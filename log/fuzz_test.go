package log

import (
	"testing"
)

// FuzzDecodeRecords feeds every decoder of stored records arbitrary
// bytes: an event record, a store's metadata, a subscription, an attempt,
// a retry entry and the type index's entries. Damaged bytes must give an
// error (ErrCorrupt or a JSON error), never a panic; and an attempt that
// decodes must encode and decode to the same.
func FuzzDecodeRecords(f *testing.F) {
	a := Attempt{ID: 7, Seq: 3, EventID: "evt_1", Attempt: 2, At: 5, Duration: 9, Status: 200, Error: "x", Outcome: OutcomeFailed, NextAt: 11,
		RequestHeaders: [][2]string{{"a", "b"}}, ResponseHeaders: [][2]string{{"c", "d"}}, ResponseBody: "ok"}
	f.Add(EncodeAttempt(nil, &a))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte(`{"id":"sub_1"}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		decodeRecord("s", 1, v)
		decodeStoreMeta("s", v)
		decodeSub(v)
		decodeRetry(1, v)
		decodeTypeEntry("s", []byte("t"), v)
		decodeTypesMeta("s", v)
		peekTypeAndTime("s", 1, v)
		got, err := decodeAttempt(v)
		if err != nil {
			return
		}
		again, err := decodeAttempt(EncodeAttempt(nil, &got))
		if err != nil {
			t.Fatalf("a decoded attempt does not decode after encoding: %v", err)
		}
		if string(EncodeAttempt(nil, &again)) != string(EncodeAttempt(nil, &got)) {
			t.Fatalf("attempt round trip differs")
		}
	})
}
