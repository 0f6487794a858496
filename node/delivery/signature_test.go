package delivery

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func mustSecret(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// TestOfficialLibraryVerifiesOurSignatures: a receiver using the Standard
// Webhooks reference library (code nobody here wrote) accepts what Herald
// signs, including during a rotation, with either secret.
func TestOfficialLibraryVerifiesOurSignatures(t *testing.T) {
	oldS, oldK := mustSecret(t)
	newS, newK := mustSecret(t)
	body := []byte(`{"id":"evt_1","type":"store/order/created","data":{"n": 1}}`)
	h := http.Header{}
	SetHeaders(h, [][]byte{newK, oldK}, "evt_1", time.Now(), body)
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures during rotation, want 2", n)
	}
	for _, s := range []string{newS, oldS} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("reference library rejected our signature: %v", err)
		}
		if err := wh.Verify(append(body, ' '), h); err == nil {
			t.Fatal("reference library accepted a changed body")
		}
	}
	// A secret that is not one of the signing ones is rejected.
	otherS, _ := mustSecret(t)
	wh, err := standardwebhooks.NewWebhook(otherS)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err == nil {
		t.Fatal("reference library accepted a foreign secret")
	}
}

// TestVerifyAcceptsOfficialLibrarySignatures: our Verify accepts what the
// reference library signs.
func TestVerifyAcceptsOfficialLibrarySignatures(t *testing.T) {
	s, _ := mustSecret(t)
	wh, err := standardwebhooks.NewWebhook(s)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"hello":"world"}`)
	now := time.Now()
	sig, err := wh.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, "v1,bm90IGl0 "+sig) // an unrelated signature first
	if err := Verify(s, h, body, 0); err != nil {
		t.Fatalf("Verify rejected the reference signature: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s, k := mustSecret(t)
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	good := func() http.Header {
		h := http.Header{}
		SetHeaders(h, [][]byte{k}, "evt_9", now, body)
		return h
	}
	cases := []struct {
		name   string
		secret string
		edit   func(http.Header)
		body   []byte
		at     time.Time
		want   error
	}{
		{"tampered body", s, nil, []byte(`{"a":2}`), now, ErrNoMatch},
		{"other id", s, func(h http.Header) { h.Set(HeaderID, "evt_10") }, body, now, ErrNoMatch},
		{"shifted timestamp", s, func(h http.Header) { h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10)) }, body, now, ErrNoMatch},
		{"v2 only", s, func(h http.Header) { h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1,", "v2,", 1)) }, body, now, ErrNoMatch},
		{"too old", s, nil, body, now.Add(6 * time.Minute), ErrTooOld},
		{"too new", s, nil, body, now.Add(-6 * time.Minute), ErrTooNew},
		{"missing id", s, func(h http.Header) { h.Del(HeaderID) }, body, now, ErrMissingHeaders},
		{"missing signature", s, func(h http.Header) { h.Del(HeaderSignature) }, body, now, ErrMissingHeaders},
		{"bad timestamp", s, func(h http.Header) { h.Set(HeaderTimestamp, "yesterday") }, body, now, ErrBadTimestamp},
		{"bad secret", "whsec_!!!", nil, body, now, ErrInvalidSecret},
		{"short secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), nil, body, now, ErrInvalidSecret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			if tc.edit != nil {
				tc.edit(h)
			}
			if err := verifyAt(tc.secret, h, tc.body, 0, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := verifyAt(s, good(), body, 0, now.Add(4*time.Minute)); err != nil {
		t.Fatalf("within tolerance: %v", err)
	}
	if err := verifyAt(s, good(), body, time.Hour, now.Add(30*time.Minute)); err != nil {
		t.Fatalf("custom tolerance: %v", err)
	}
}

// TestBodySignatureVector checks X-Herald-Signature against RFC 4231's
// HMAC-SHA256 test case 2.
func TestBodySignatureVector(t *testing.T) {
	got := BodySignature([]byte("Jefe"), []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("got %s", got)
	}
}

func TestNewSecretShape(t *testing.T) {
	a, errA := NewSecret()
	b, errB := NewSecret()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == b || !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("secrets %q %q", a, b)
	}
	k, err := ParseSecret(a)
	if err != nil || len(k) != 32 {
		t.Fatalf("key %d bytes, %v", len(k), err)
	}
}
