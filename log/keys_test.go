package log

import (
	"errors"
	"strings"
	"testing"

	"github.com/herald-io/herald/api"
)

func TestStorePatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, store string
		match          bool
	}{
		{"shop-1", "shop-1", true},
		{"shop-1", "shop-10", false},
		{"plant-*", "plant-1", true},
		{"plant-*", "plant-", true},
		{"plant-*", "plan", false},
		{"*", "anything", true},
		{"*", HeraldStore, false},
		{"_*", HeraldStore, false},
		{HeraldStore, HeraldStore, true},
	} {
		if got := MatchStore(c.pattern, c.store); got != c.match {
			t.Errorf("MatchStore(%q, %q) = %v", c.pattern, c.store, got)
		}
	}
	for _, p := range []string{"shop-1", "plant-*", "*", "a*", HeraldStore} {
		if err := ValidateStorePattern(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "a*b", "**", "Shop", "-x*", strings.Repeat("a", 65)} {
		if err := ValidateStorePattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestKeysAndTokensInTheLog(t *testing.T) {
	d := mustOpen(t)
	hash := strings.Repeat("ab", 32)
	good := APIKey{ID: "key_1", Name: "ci", Hash: hash, Grants: []api.Grant{{Stores: []string{"shop-*"}, Actions: []api.Action{api.ActionPublish}}}, CreatedAt: 10}
	bad := []APIKey{
		{ID: "nokeyprefix", Name: "x", Hash: hash, Admin: true, CreatedAt: 1},
		{ID: "key_2", Name: "", Hash: hash, Admin: true, CreatedAt: 1},
		{ID: "key_2", Name: "x", Hash: "zz", Admin: true, CreatedAt: 1},
		{ID: "key_2", Name: "x", Hash: hash, CreatedAt: 1},
		{ID: "key_2", Name: "x", Hash: hash, Admin: true, Grants: good.Grants, CreatedAt: 1},
		{ID: "key_2", Name: "x", Hash: hash, Grants: []api.Grant{{Stores: []string{"a"}, Actions: []api.Action{"write"}}}, CreatedAt: 1},
		{ID: "key_2", Name: "x", Hash: hash, Admin: true, CreatedAt: 5, ExpiresAt: 5},
	}
	err := d.Update(func(tx *Tx) error {
		for _, k := range bad {
			if err := tx.CreateKey(k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%+v: %v", k, err)
			}
		}
		if err := tx.CreateKey(good); err != nil {
			return err
		}
		dup := good
		dup.ID = "key_other"
		if err := tx.CreateKey(dup); !errors.Is(err, ErrKeyExists) {
			t.Errorf("same hash twice: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := d.KeysInitialized(); !ok {
		t.Fatal("keys not initialized after a key")
	}
	v := d.KeysVersion()
	if err := d.Update(func(tx *Tx) error { return tx.DeleteKey("key_1") }); err != nil {
		t.Fatal(err)
	}
	if d.KeysVersion() == v {
		t.Fatal("KeysVersion did not move on a revocation")
	}
	if _, err := d.Key("key_1"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoked key: %v", err)
	}
	if ok, _ := d.KeysInitialized(); !ok {
		t.Fatal("revoking every key made the cluster look new (a second admin key would be made)")
	}

	// Join tokens: once, before they expire; deterministic in now.
	th := strings.Repeat("cd", 32)
	err = d.Update(func(tx *Tx) error {
		if err := tx.CreateJoinToken(th, 100, 50); err != nil {
			return err
		}
		if err := tx.CreateJoinToken(strings.Repeat("ef", 32), 60, 50); err != nil {
			return err
		}
		if err := tx.UseJoinToken(strings.Repeat("ef", 32), 60); !errors.Is(err, ErrInvalidJoinToken) {
			t.Errorf("expired token: %v", err)
		}
		if err := tx.UseJoinToken(th, 99); err != nil {
			t.Errorf("good token: %v", err)
		}
		if err := tx.UseJoinToken(th, 99); !errors.Is(err, ErrInvalidJoinToken) {
			t.Errorf("reused token: %v", err)
		}
		if err := tx.UseJoinToken(strings.Repeat("00", 32), 1); !errors.Is(err, ErrInvalidJoinToken) {
			t.Errorf("unknown token: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
