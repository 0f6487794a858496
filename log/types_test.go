package log

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func mustTypes(t testing.TB, d *DB, store string) StoreTypes {
	t.Helper()
	st, err := d.Types(store)
	if err != nil {
		t.Fatalf("types of %s: %v", store, err)
	}
	return st
}

func evAt(id, typ string, ts int64) NewEvent {
	return NewEvent{ID: id, Type: typ, Version: "1", Timestamp: ts, Data: []byte(`{}`)}
}

func mustCompact(t testing.TB, d *DB, store string, upTo uint64) uint64 {
	t.Helper()
	var n uint64
	if err := d.Update(func(tx *Tx) error { var err error; n, err = tx.Compact(store, upTo); return err }); err != nil {
		t.Fatalf("compact %s to %d: %v", store, upTo, err)
	}
	return n
}

// TestTypesCountsAndNewest: the index counts each stored event once by
// its type (duplicates by id or key are not counted: nothing was
// stored), lists types by name, and gives the newest event's seq and the
// timestamp stored in it, even when it is older than an earlier event's.
func TestTypesCountsAndNewest(t *testing.T) {
	d := mustOpen(t)
	if _, err := d.Types("shop"); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("before the first event: %v, want ErrStoreNotFound", err)
	}
	if _, err := d.Types("Shop"); !errors.Is(err, ErrInvalidStore) {
		t.Fatalf("a bad name: %v, want ErrInvalidStore", err)
	}
	keyed := evAt("k1", "order.shipped", baseTime+4)
	keyed.IdempotencyKey = "ship-1"
	mustAppend(t, d, "shop", evAt("e1", "order.paid", baseTime+1), evAt("e2", "order.created", baseTime+2), evAt("e3", "order.created", baseTime+3), keyed)
	// Duplicates: the same id with another type, the same key with a new id.
	again := evAt("k2", "order.shipped", baseTime+9)
	again.IdempotencyKey = "ship-1"
	if out := mustAppend(t, d, "shop", evAt("e1", "never.stored", baseTime+9), again); !out[0].Duplicate || !out[1].Duplicate {
		t.Fatalf("not duplicates: %+v", out)
	}
	// The newest event's time is the one it carries (a new leader's clock
	// may be behind the old one's).
	mustAppend(t, d, "shop", evAt("e5", "order.created", baseTime-100))
	mustAppend(t, d, "other", evAt("o1", "order.created", baseTime))

	want := StoreTypes{Types: []TypeInfo{
		{Type: "order.created", Count: 3, LastSeq: 5, LastSeen: baseTime - 100},
		{Type: "order.paid", Count: 1, LastSeq: 1, LastSeen: baseTime + 1},
		{Type: "order.shipped", Count: 1, LastSeq: 4, LastSeen: baseTime + 4},
	}}
	if got := mustTypes(t, d, "shop"); !reflect.DeepEqual(got, want) {
		t.Fatalf("types:\n got %+v\nwant %+v", got, want)
	}
	if got := mustTypes(t, d, "other"); len(got.Types) != 1 || got.Types[0].Count != 1 || got.Truncated {
		t.Fatalf("other store: %+v", got)
	}
}

// TestTypesBatchingDoesNotMatter: the index written once per type at the
// end of a transaction is the one a transaction per event writes, byte for
// byte.
func TestTypesBatchingDoesNotMatter(t *testing.T) {
	one, many := mustOpen(t), mustOpen(t)
	var evs []NewEvent
	for i := range 300 {
		evs = append(evs, evAt(fmt.Sprintf("e%d", i), fmt.Sprintf("t/%d", i%7), baseTime+int64(i)))
	}
	if err := one.Update(func(tx *Tx) error {
		for i := 0; i < len(evs); i += 50 {
			if _, err := tx.Append("shop", evs[i:i+50]); err != nil {
				return err
			}
		}
		_, err := tx.Compact("shop", 20)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		mustAppend(t, many, "shop", evs[i])
	}
	mustCompact(t, many, "shop", 20)
	if a, b := dumpTypes(t, one, "shop"), dumpTypes(t, many, "shop"); !bytes.Equal(a, b) {
		t.Fatalf("one transaction:\n%s\none per event:\n%s", a, b)
	}
	if st := mustTypes(t, one, "shop"); len(st.Types) != 7 || st.Types[0].Type != "t/0" || st.Types[0].LastSeq != 295 {
		t.Fatalf("types %+v", st)
	}
}

// dumpTypes is a store's type index as stored: every key and value.
func dumpTypes(t testing.TB, d *DB, store string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(storeBucketName(store)).Bucket(subTypes).ForEach(func(k, v []byte) error {
			fmt.Fprintf(&b, "%q=%x\n", k, v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTypesCompactionUncounts: retention removes events from the counts;
// a type whose last event went leaves the list; the counts add up to the
// store's events.
func TestTypesCompactionUncounts(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "shop", evAt("e1", "a", baseTime+1), evAt("e2", "b", baseTime+2), evAt("e3", "a", baseTime+3), evAt("e4", "c", baseTime+4), evAt("e5", "a", baseTime+5))
	if n := mustCompact(t, d, "shop", 2); n != 2 {
		t.Fatalf("removed %d", n)
	}
	want := []TypeInfo{{Type: "a", Count: 2, LastSeq: 5, LastSeen: baseTime + 5}, {Type: "c", Count: 1, LastSeq: 4, LastSeen: baseTime + 4}}
	st := mustTypes(t, d, "shop")
	if !reflect.DeepEqual(st.Types, want) || st.Truncated {
		t.Fatalf("after compaction: %+v, want %+v", st, want)
	}
	si, err := d.Store("shop")
	if err != nil {
		t.Fatal(err)
	}
	if sum := st.Types[0].Count + st.Types[1].Count; sum != si.Events {
		t.Fatalf("counts add up to %d, the store holds %d", sum, si.Events)
	}
	mustCompact(t, d, "shop", 5)
	if st := mustTypes(t, d, "shop"); len(st.Types) != 0 || st.Types == nil || st.Truncated {
		t.Fatalf("everything removed: %+v", st)
	}
	mustAppend(t, d, "shop", evAt("e6", "b", baseTime+6))
	if st := mustTypes(t, d, "shop"); !reflect.DeepEqual(st.Types, []TypeInfo{{Type: "b", Count: 1, LastSeq: 6, LastSeen: baseTime + 6}}) {
		t.Fatalf("a type back after it was removed: %+v", st)
	}
}

// TestTypesBound: past MaxTypesPerStore types a new type is not added and
// the index says truncated; known types keep counting. It stays truncated
// while an event of a left-out type is stored (a type added then would
// lack those events), even when compaction made room; once those are
// removed, new types are added again. Two logs given the same events
// in other transactions agree throughout.
func TestTypesBound(t *testing.T) {
	a, b := mustOpen(t), mustOpen(t)
	var first []NewEvent
	for i := range MaxTypesPerStore {
		first = append(first, evAt(fmt.Sprintf("f%d", i), fmt.Sprintf("t%04d", i), baseTime+int64(i)))
	}
	mustAppend(t, a, "shop", first...)
	for i := 0; i < len(first); i += 100 {
		mustAppend(t, b, "shop", first[i:i+100]...)
	}
	both := func(evs ...NewEvent) {
		t.Helper()
		mustAppend(t, a, "shop", evs...)
		for _, e := range evs {
			mustAppend(t, b, "shop", e)
		}
	}
	check := func(what string, n int, truncated bool, has, lacks string) StoreTypes {
		t.Helper()
		st := mustTypes(t, a, "shop")
		if len(st.Types) != n || st.Truncated != truncated {
			t.Fatalf("%s: %d types, truncated %v; want %d, %v", what, len(st.Types), st.Truncated, n, truncated)
		}
		names := map[string]bool{}
		for _, ti := range st.Types {
			names[ti.Type] = true
		}
		if has != "" && !names[has] || lacks != "" && names[lacks] {
			t.Fatalf("%s: want %q listed and %q not: %v", what, has, lacks, st.Types)
		}
		if other := mustTypes(t, b, "shop"); !reflect.DeepEqual(st, other) {
			t.Fatalf("%s: the logs disagree", what)
		}
		for _, d := range []*DB{a, b} {
			if err := d.VerifyTypes("shop"); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		return st
	}
	check("at the bound", MaxTypesPerStore, false, "t0999", "")

	both(evAt("l1", "late.1", baseTime+2000), evAt("f0b", "t0000", baseTime+2001)) // seqs 1001, 1002
	st := check("past the bound", MaxTypesPerStore, true, "t0000", "late.1")
	if st.Types[0] != (TypeInfo{Type: "t0000", Count: 2, LastSeq: 1002, LastSeen: baseTime + 2001}) {
		t.Fatalf("a known type past the bound: %+v", st.Types[0])
	}

	// Room, but late.1 (seq 1001) is still stored: late.2 is left out too.
	for _, d := range []*DB{a, b} {
		mustCompact(t, d, "shop", 1000)
	}
	both(evAt("l2", "late.2", baseTime+2002)) // seq 1003
	check("room, still truncated", 1, true, "t0000", "late.2")

	// late.1 and late.2 removed: nothing is left out, new types are added.
	for _, d := range []*DB{a, b} {
		mustCompact(t, d, "shop", 1003)
	}
	check("left-out events removed", 0, false, "", "")
	both(evAt("l3", "late.3", baseTime+2003))
	check("added again", 1, false, "late.3", "")
}

// stripTypes makes the file at path look written by a release without
// the type index: no index bucket in any store, no marker.
func stripTypes(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Delete(keyTypesAt); err != nil {
			return err
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.HasPrefix(name, []byte("s/")) && b.Bucket(subTypes) != nil {
				return b.DeleteBucket(subTypes)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawUpdate changes the closed log file at path with bbolt directly.
func rawUpdate(t testing.TB, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// fillForUpgrade writes stores with duplicates, retention and enough types
// to pass the bound, and returns their indexes.
func fillForUpgrade(t testing.TB, d *DB) map[string]StoreTypes {
	t.Helper()
	mustAppend(t, d, "shop", evAt("e1", "order.created", baseTime+1), evAt("e2", "order.paid", baseTime+2), evAt("e3", "order.created", baseTime+3))
	mustAppend(t, d, "shop", evAt("e1", "dup", baseTime+4), evAt("e4", "order.created", baseTime+5))
	mustAppend(t, d, "shop", evAt("e5", "order.refunded", baseTime+6))
	mustCompact(t, d, "shop", 2)
	var many []NewEvent
	for i := range MaxTypesPerStore + 5 {
		many = append(many, evAt(fmt.Sprintf("m%d", i), fmt.Sprintf("m/%d", i), baseTime+int64(i)))
	}
	mustAppend(t, d, "many", many...)
	mustAppend(t, d, "_herald", evAt("h1", "herald.delivery.dead", baseTime))
	out := map[string]StoreTypes{}
	for _, s := range []string{"shop", "many", "_herald"} {
		out[s] = mustTypes(t, d, s)
	}
	if !out["many"].Truncated || out["shop"].Truncated || len(out["shop"].Types) != 2 {
		t.Fatalf("setup: %+v", out)
	}
	return out
}

// TestTypesBuiltOnceForAnOlderFile: a log written by a release without
// the index gets it on open, built from the stored events, identical to
// the one kept as the events came (compaction and the bound included);
// it is built once (a later open keeps what is stored); and a file whose
// applied index moved on without the index being kept (an older release
// applied entries after installing a newer one's snapshot) is rebuilt.
func TestTypesBuiltOnceForAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	d := openAt(t, path, nil)
	if err := d.Update(func(tx *Tx) error { return tx.SetApplied(7, 1) }); err != nil {
		t.Fatal(err)
	}
	want := fillForUpgrade(t, d)
	d.Close()

	stripTypes(t, path)
	var logged bytes.Buffer
	d = openAt(t, path, slog.New(slog.NewTextHandler(&logged, nil)))
	for s, w := range want {
		if got := mustTypes(t, d, s); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s rebuilt:\n got %+v\nwant %+v", s, got, w)
		}
	}
	if !strings.Contains(logged.String(), "built the event type index") || !strings.Contains(logged.String(), "stores=3") {
		t.Fatalf("log: %s", logged.String())
	}
	d.Close()

	// Built once: a later open trusts the index (here made wrong on
	// purpose, and found out by VerifyTypes).
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		e := &typeEntry{count: 99, lastSeq: 4, lastSeen: baseTime + 5}
		return tx.Bucket(storeBucketName("shop")).Bucket(subTypes).Put([]byte("order.created"), e.encode())
	})
	logged.Reset()
	d = openAt(t, path, slog.New(slog.NewTextHandler(&logged, nil)))
	if st := mustTypes(t, d, "shop"); st.Types[0].Count != 99 || logged.Len() != 0 {
		t.Fatalf("rebuilt although current: %+v\n%s", st, logged.String())
	}
	if err := d.VerifyTypes("shop"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyTypes of a wrong index: %v", err)
	}
	d.Close()

	// An older release applied entry 8 (a new event) without keeping the
	// index: the applied index moved, the marker did not.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		v := make([]byte, 16)
		v[7], v[15] = 8, 1
		return tx.Bucket(bucketMeta).Put(keyApplied, v)
	})
	d = openAt(t, path, nil)
	if st := mustTypes(t, d, "shop"); !reflect.DeepEqual(st, want["shop"]) {
		t.Fatalf("a stale index was not rebuilt: %+v", st)
	}
	if idx, _, err := d.Applied(); err != nil || idx != 8 {
		t.Fatalf("applied %d %v", idx, err)
	}
}

// TestTypesAfterReplace: installing a snapshot that lacks the index (an
// older node's) builds it; one that has it keeps it.
func TestTypesAfterReplace(t *testing.T) {
	src := mustOpen(t)
	if err := src.Update(func(tx *Tx) error { return tx.SetApplied(12, 2) }); err != nil {
		t.Fatal(err)
	}
	want := fillForUpgrade(t, src)
	snap := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	stripped := filepath.Join(t.TempDir(), "stripped.db")
	if b, err := os.ReadFile(snap); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(stripped, b, 0o600); err != nil {
		t.Fatal(err)
	}
	stripTypes(t, stripped)

	for _, file := range []string{stripped, snap} {
		dst := mustOpen(t)
		mustAppend(t, dst, "shop", evAt("x1", "replaced.away", baseTime))
		r, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		err = dst.Replace(r)
		r.Close()
		if err != nil {
			t.Fatalf("replace from %s: %v", filepath.Base(file), err)
		}
		for s, w := range want {
			if got := mustTypes(t, dst, s); !reflect.DeepEqual(got, w) {
				t.Fatalf("%s after replacing from %s:\n got %+v\nwant %+v", s, filepath.Base(file), got, w)
			}
		}
		// And the index goes on from there.
		mustAppend(t, dst, "shop", evAt("x2", "order.paid", baseTime+50))
		if st := mustTypes(t, dst, "shop"); len(st.Types) != 3 || st.Types[1] != (TypeInfo{Type: "order.paid", Count: 1, LastSeq: 6, LastSeen: baseTime + 50}) {
			t.Fatalf("after an append: %+v", st)
		}
	}
}

// TestPrepareRestoreKeepsTheIndex: a backup prepared for a new cluster
// (applied index reset) keeps a current index instead of rebuilding it.
func TestPrepareRestoreKeepsTheIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	d := openAt(t, path, nil)
	if err := d.Update(func(tx *Tx) error { return tx.SetApplied(30, 4) }); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, d, "shop", evAt("e1", "a", baseTime))
	d.Close()
	if err := PrepareRestore(path); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	d = openAt(t, path, slog.New(slog.NewTextHandler(&logged, nil)))
	if st := mustTypes(t, d, "shop"); len(st.Types) != 1 || logged.Len() != 0 {
		t.Fatalf("after PrepareRestore: %+v\n%s", st, logged.String())
	}
}
