package secrets

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyring(t *testing.T, m MasterKey, ids ...uint32) *Keyring {
	t.Helper()
	k := NewKeyring(m)
	for _, id := range ids {
		dk, err := NewDataKey()
		if err != nil {
			t.Fatal(err)
		}
		w, err := Wrap(&m, id, dk)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Add(id, w); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

func TestSealOpen(t *testing.T) {
	m, _ := NewMasterKey()
	k := keyring(t, m, 1)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s, err := k.Seal(secret, AD("sub_1", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(s) || strings.Contains(s, "MfKQ9r8") {
		t.Fatalf("sealed %q", s)
	}
	s2, _ := k.Seal(secret, AD("sub_1", "secret"))
	if s == s2 {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if got, err := k.Open(s, AD("sub_1", "secret")); err != nil || got != secret {
		t.Fatalf("open: %q %v", got, err)
	}
	// Bound to its place: another subscription, another field.
	for _, ad := range [][]byte{AD("sub_2", "secret"), AD("sub_1", "header:authorization")} {
		if _, err := k.Open(s, ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened under %s: %v", ad, err)
		}
	}
	// A flipped byte does not open.
	p, _ := Parse(s)
	p.Ciphertext[0] ^= 1
	if _, err := k.Open(s[:len(Prefix)]+reencode(p), AD("sub_1", "secret")); err == nil {
		t.Fatal("a damaged ciphertext opened")
	}
	// Another node's keyring under another master key cannot load the key.
	other, _ := NewMasterKey()
	dk, _ := NewDataKey()
	w, _ := Wrap(&m, 2, dk)
	if err := NewKeyring(other).Add(2, w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("unwrap under another master key: %v", err)
	}
	if err := NewKeyring(m).Add(3, w); !errors.Is(err, ErrOpen) {
		t.Fatalf("a wrapped key moved to another id: %v", err)
	}
	if _, err := NewKeyring(m).Open(s, AD("sub_1", "secret")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open without the data key: %v", err)
	}
	if _, err := NewKeyring(m).Seal("x", nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without a data key: %v", err)
	}
}

func TestRotationKeepsOldValuesOpen(t *testing.T) {
	m, _ := NewMasterKey()
	k := keyring(t, m, 1)
	old, _ := k.Seal("a", AD("s", "secret"))
	dk, _ := NewDataKey()
	w, _ := Wrap(&m, 2, dk)
	if err := k.Add(2, w); err != nil {
		t.Fatal(err)
	}
	if k.Current() != 2 {
		t.Fatalf("current %d", k.Current())
	}
	now, _ := k.Seal("b", AD("s", "secret"))
	po, _ := Parse(old)
	pn, _ := Parse(now)
	if po.KeyID != 1 || pn.KeyID != 2 {
		t.Fatalf("key ids %d %d", po.KeyID, pn.KeyID)
	}
	if got, err := k.Open(old, AD("s", "secret")); err != nil || got != "a" {
		t.Fatalf("old value: %q %v", got, err)
	}
}

func TestKeyFile(t *testing.T) {
	m, _ := NewMasterKey()
	p := filepath.Join(t.TempDir(), "secrets.key")
	if err := WriteKeyFile(p, m); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	got, err := ReadKeyFile(p)
	if err != nil || got != m {
		t.Fatalf("read back: %v", err)
	}
	for _, bad := range []string{"", "hmk1_", "hmk1_AAAA", "nope" + m.String()[5:]} {
		if _, err := ParseMasterKey(bad); err == nil {
			t.Errorf("parsed %q", bad)
		} else if strings.Contains(err.Error(), m.String()[5:]) {
			t.Errorf("the error quotes the key")
		}
	}
	a, _ := DeriveMasterKey([]byte("ca key pem"))
	b, _ := DeriveMasterKey([]byte("ca key pem"))
	c, _ := DeriveMasterKey([]byte("another ca key"))
	if a != b || a == c {
		t.Fatal("derivation is not a function of the CA key")
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	for _, s := range []string{"", "whsec_abc", Prefix, Prefix + "!!!", Prefix + "AAAA", Prefix + strings.Repeat("A", 200000)} {
		if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.20q): %v", s, err)
		}
	}
}

// FuzzOpen: any string given to Open (the stored form a replica or a
// backup hands back) is refused or opened, never a panic; a value that
// opens was sealed by this keyring.
func FuzzOpen(f *testing.F) {
	m := MasterKey{1, 2, 3}
	k := NewKeyring(m)
	dk := make([]byte, KeySize)
	w, _ := Wrap(&m, 1, dk)
	if err := k.Add(1, w); err != nil {
		f.Fatal(err)
	}
	s, _ := k.Seal("whsec_seed", AD("sub", "secret"))
	f.Add(s)
	f.Add(Prefix)
	f.Add(Prefix + "AAAAAQ")
	f.Add("whsec_x")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := k.Open(in, AD("sub", "secret"))
		if err == nil && got != "whsec_seed" && in != s {
			// Only a forgery would open: XChaCha20-Poly1305 rules it out.
			t.Fatalf("opened %q to %q", in, got)
		}
		if p, err := Parse(in); err == nil && len(p.Nonce) != nonceSize {
			t.Fatalf("nonce of %d bytes", len(p.Nonce))
		}
	})
}

func reencode(p Sealed) string {
	raw := []byte{byte(p.KeyID >> 24), byte(p.KeyID >> 16), byte(p.KeyID >> 8), byte(p.KeyID)}
	raw = append(raw, p.Nonce...)
	raw = append(raw, p.Ciphertext...)
	return b64(raw)
}

func b64(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }
