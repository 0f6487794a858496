package api_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-io/herald/api"
)

// FuzzEventJSON: whatever the strings, AppendJSON writes valid JSON that
// decodes back to the same event, with data byte for byte.
func FuzzEventJSON(f *testing.F) {
	f.Add("evt_1", "shop-1", "store/order/created", "1", []byte(`{"a": [1, 2.50, "<&>"]}`), int64(1))
	f.Add("\"\\\x00\u2028", "s", "t\n", "v\t", []byte(`"\u00e9 \ud83d\ude00"`), int64(-1))
	f.Add("\xff\xfe", "", "", "", []byte(`null`), int64(0))
	f.Fuzz(func(t *testing.T, id, store, typ, version string, data []byte, ns int64) {
		if !json.Valid(data) {
			return
		}
		// Stored data never starts or ends with whitespace: decoding a
		// request drops it, as decoding this output does.
		data = bytes.TrimSpace(data)
		ev := api.Event{ID: id, Store: store, Seq: 7, Type: typ, Timestamp: time.Unix(0, ns).UTC(), Version: version, Data: data, Hash: "abc"}
		b := ev.AppendJSON(nil)
		var got api.Event
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		// Invalid UTF-8 is written as U+FFFD, as encoding/json would.
		want := ev
		for _, p := range []*string{&want.ID, &want.Store, &want.Type, &want.Version} {
			q, _ := json.Marshal(*p)
			json.Unmarshal(q, p)
		}
		if got.ID != want.ID || got.Store != want.Store || got.Type != want.Type || got.Version != want.Version ||
			got.Seq != 7 || got.Hash != "abc" || !got.Timestamp.Equal(ev.Timestamp) || string(got.Data) != string(data) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\njson %s", got, want, b)
		}
		env := ev.AppendEnvelope(nil)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(env, &m); err != nil || m["hash"] != nil || len(m) != 7 {
			t.Fatalf("envelope %s: %v", env, err)
		}
	})
}
