package log

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mustOpen opens a fresh log in a temp dir; on cleanup it closes it after
// running bbolt's consistency check and verifying every store's hash
// chain and type index, so every test doubles as an integrity test.
func mustOpen(t testing.TB) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "events.db"), nil)
}

// openAt opens the log at path (logging to logger, or nowhere), checked
// and closed on cleanup like mustOpen's unless the test closed it.
func openAt(t testing.TB, path string, logger *slog.Logger) *DB {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := Open(path, Options{InitialMmapSize: 1 << 20, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.db == nil {
			return
		}
		if err := d.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		stores, err := d.Stores()
		if err != nil {
			t.Errorf("stores: %v", err)
		}
		for _, s := range stores {
			if err := d.VerifyChain(s.Name); err != nil {
				t.Errorf("verify chain %s: %v", s.Name, err)
			}
			if err := d.VerifyTypes(s.Name); err != nil {
				t.Errorf("verify types %s: %v", s.Name, err)
			}
		}
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

var baseTime = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano()

func ev(id, typ, data string) NewEvent {
	return NewEvent{ID: id, Type: typ, Version: "1", Timestamp: baseTime, Data: []byte(data)}
}

func mustAppend(t testing.TB, d *DB, store string, evs ...NewEvent) []Appended {
	t.Helper()
	var out []Appended
	err := d.Update(func(tx *Tx) error {
		var err error
		out, err = tx.Append(store, evs)
		return err
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return out
}

func TestAppendAssignsGaplessSeqsPerStore(t *testing.T) {
	d := mustOpen(t)
	for i := 1; i <= 5; i++ {
		a := mustAppend(t, d, "shop-a", ev(fmt.Sprintf("a%d", i), "store/order/created", `{}`))
		if a[0].Event.Seq != uint64(i) || a[0].Duplicate {
			t.Fatalf("shop-a event %d got seq %d dup=%v", i, a[0].Event.Seq, a[0].Duplicate)
		}
	}
	b := mustAppend(t, d, "plant-1", ev("b1", "production.order.completed", `1`), ev("b2", "x", `2`))
	if b[0].Event.Seq != 1 || b[1].Event.Seq != 2 {
		t.Fatalf("plant-1 seqs = %d,%d, want 1,2", b[0].Event.Seq, b[1].Event.Seq)
	}
	si, err := d.Store("shop-a")
	if err != nil || si.LastSeq != 5 || si.Events != 5 {
		t.Fatalf("store = %+v, %v", si, err)
	}
	stores, _ := d.Stores()
	if len(stores) != 2 || stores[0].Name != "plant-1" || stores[1].Name != "shop-a" {
		t.Fatalf("stores = %+v", stores)
	}
}

func TestDataKeptByteForByte(t *testing.T) {
	d := mustOpen(t)
	raw := "{ \"b\" : [1, 2.50, \"<&>\"],\n  \"a\": \"\\u00e9\" }"
	a := mustAppend(t, d, "s", ev("e1", "t", raw))
	if string(a[0].Event.Data) != raw {
		t.Fatalf("append returned %q", a[0].Event.Data)
	}
	got, err := d.Get("s", "e1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != raw {
		t.Fatalf("read back %q, want %q", got.Data, raw)
	}
	out := got.AppendJSON(nil)
	if !bytes.Contains(out, []byte(`"data":`+raw+`,"hash"`)) {
		t.Fatalf("AppendJSON changed data: %s", out)
	}
	var decoded map[string]any
	if err := json.Unmarshal(out, &decoded); err != nil {
		t.Fatalf("AppendJSON output is not JSON: %v: %s", err, out)
	}
	if decoded["id"] != "e1" || decoded["store"] != "s" || decoded["seq"].(float64) != 1 {
		t.Fatalf("decoded = %v", decoded)
	}
	if decoded["timestamp"] != "2026-11-22T10:00:00Z" {
		t.Fatalf("timestamp = %v", decoded["timestamp"])
	}
}

func TestHashChainDependsOnHistory(t *testing.T) {
	d1, d2 := mustOpen(t), mustOpen(t)
	mustAppend(t, d1, "s", ev("e1", "t", `1`), ev("e2", "t", `2`))
	mustAppend(t, d2, "s", ev("e1", "t", `1`))
	mustAppend(t, d2, "s", ev("e2", "t", `2`))
	s1, _ := d1.Store("s")
	s2, _ := d2.Store("s")
	if s1.HeadHash == "" || s1.HeadHash != s2.HeadHash {
		t.Fatalf("same events, different heads: %q vs %q", s1.HeadHash, s2.HeadHash)
	}
	d3 := mustOpen(t)
	mustAppend(t, d3, "s", ev("e2", "t", `2`), ev("e1", "t", `1`))
	s3, _ := d3.Store("s")
	if s3.HeadHash == s1.HeadHash {
		t.Fatal("reordered events produced the same head hash")
	}
	d4 := mustOpen(t)
	mustAppend(t, d4, "s", ev("e1", "t", `1`), ev("e2", "t", `3`))
	s4, _ := d4.Store("s")
	if s4.HeadHash == s1.HeadHash {
		t.Fatal("different data produced the same head hash")
	}
	e2, _ := d1.Get("s", "e2")
	if e2.Hash != s1.HeadHash {
		t.Fatalf("last event hash %s != head %s", e2.Hash, s1.HeadHash)
	}
}

func TestIdempotentByIDAndKey(t *testing.T) {
	d := mustOpen(t)
	first := mustAppend(t, d, "s", ev("order-1", "t", `{"n":1}`))
	again := mustAppend(t, d, "s", ev("order-1", "t", `{"n":2}`))
	if !again[0].Duplicate || again[0].Event.Seq != first[0].Event.Seq || string(again[0].Event.Data) != `{"n":1}` {
		t.Fatalf("duplicate id: got %+v", again[0])
	}
	k := ev("evt_A", "t", `1`)
	k.IdempotencyKey = "key-1"
	a := mustAppend(t, d, "s", k)
	k2 := ev("evt_B", "t", `2`)
	k2.IdempotencyKey = "key-1"
	b := mustAppend(t, d, "s", k2)
	if a[0].Duplicate || !b[0].Duplicate || b[0].Event.ID != "evt_A" {
		t.Fatalf("idempotency key: first %+v second %+v", a[0], b[0])
	}
	// The same key in another store is independent.
	c := mustAppend(t, d, "other", k2)
	if c[0].Duplicate {
		t.Fatal("idempotency key leaked across stores")
	}
	// A batch with a repeated id stores it once; later events still get
	// contiguous seqs.
	batch := mustAppend(t, d, "s", ev("x1", "t", `1`), ev("x1", "t", `1`), ev("x2", "t", `2`))
	if batch[0].Event.Seq != 3 || !batch[1].Duplicate || batch[1].Event.Seq != 3 || batch[2].Event.Seq != 4 {
		t.Fatalf("batch = %+v", batch)
	}
	si, _ := d.Store("s")
	if si.LastSeq != 4 {
		t.Fatalf("last seq %d, want 4", si.LastSeq)
	}
	if _, err := d.Get("s", "evt_B"); !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("duplicate's own id was indexed: %v", err)
	}
}

func TestInvalidAppendChangesNothing(t *testing.T) {
	d := mustOpen(t)
	mustAppend(t, d, "s", ev("ok", "t", `1`))
	bad := []struct {
		name  string
		store string
		evs   []NewEvent
		want  error
	}{
		{"bad store", "Bad", []NewEvent{ev("a", "t", `1`)}, ErrInvalidStore},
		{"store too long", string(bytes.Repeat([]byte("a"), 65)), []NewEvent{ev("a", "t", `1`)}, ErrInvalidStore},
		{"leading dot", ".s", []NewEvent{ev("a", "t", `1`)}, ErrInvalidStore},
		{"bad type", "s", []NewEvent{ev("a", "t t", `1`)}, ErrInvalidEvent},
		{"empty type", "s", []NewEvent{ev("a", "", `1`)}, ErrInvalidEvent},
		{"no data", "s", []NewEvent{ev("a", "t", ``)}, ErrInvalidEvent},
		{"bad id", "s", []NewEvent{ev("a b", "t", `1`)}, ErrInvalidEvent},
		{"bad second of batch", "s", []NewEvent{ev("a", "t", `1`), ev("b", "t t", `2`)}, ErrInvalidEvent},
		{"empty batch", "s", nil, ErrInvalidEvent},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Update(func(tx *Tx) error {
				_, err := tx.Append(tc.store, tc.evs)
				return err
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Data that is not JSON is refused before it is proposed.
	if err := ValidateAppend("s", []NewEvent{ev("a", "t", `{`)}); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("ValidateAppend bad json: %v", err)
	}
	if err := ValidateAppend("s", []NewEvent{ev("a", "t", `{"ok":true}`)}); err != nil {
		t.Fatalf("ValidateAppend good event: %v", err)
	}
	si, _ := d.Store("s")
	stores, _ := d.Stores()
	if si.LastSeq != 1 || len(stores) != 1 {
		t.Fatalf("bad input changed the log: %+v %+v", si, stores)
	}
}

func TestReadPagesAndFilters(t *testing.T) {
	d := mustOpen(t)
	var evs []NewEvent
	for i := 1; i <= 10; i++ {
		typ := "store/order/created"
		if i%2 == 0 {
			typ = "store/stock/moved"
		}
		evs = append(evs, ev(fmt.Sprintf("e%d", i), typ, fmt.Sprint(i)))
	}
	mustAppend(t, d, "s", evs...)
	got, next, err := d.Read("s", ReadOptions{After: 0, Limit: 3})
	if err != nil || len(got) != 3 || got[0].Seq != 1 || got[2].Seq != 3 || next != 3 {
		t.Fatalf("page 1: %d events next=%d err=%v", len(got), next, err)
	}
	got, next, _ = d.Read("s", ReadOptions{After: next, Limit: 100})
	if len(got) != 7 || got[0].Seq != 4 || next != 10 {
		t.Fatalf("page 2: %d events first=%d next=%d", len(got), got[0].Seq, next)
	}
	got, next, _ = d.Read("s", ReadOptions{After: 0, Limit: 2, Types: []Pattern{MustParsePattern("store/stock/*")}})
	if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 4 || next != 4 {
		t.Fatalf("filtered: %+v next=%d", got, next)
	}
	// A filter that matches nothing still advances next (by at most MaxScan).
	got, next, _ = d.Read("s", ReadOptions{Types: []Pattern{MustParsePattern("nothing")}, MaxScan: 4})
	if len(got) != 0 || next != 4 {
		t.Fatalf("no match: %d events next=%d", len(got), next)
	}
	// A byte budget cuts a page short, but never below one event.
	got, next, _ = d.Read("s", ReadOptions{MaxBytes: 2})
	if len(got) != 2 || next != 2 {
		t.Fatalf("byte budget 2: %d events next=%d", len(got), next)
	}
	got, _, _ = d.Read("s", ReadOptions{MaxBytes: 1, After: 9})
	if len(got) != 1 {
		t.Fatalf("byte budget 1: %d events", len(got))
	}
	got, next, err = d.Read("empty", ReadOptions{After: 7})
	if err != nil || len(got) != 0 || next != 7 {
		t.Fatalf("unknown store: %d events next=%d err=%v", len(got), next, err)
	}
	if _, _, err := d.Read("Bad Name", ReadOptions{}); !errors.Is(err, ErrInvalidStore) {
		t.Fatalf("bad store read: %v", err)
	}
	if _, err := d.Store("nope"); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("missing store: %v", err)
	}
	if e, err := d.GetSeq("s", 10); err != nil || e.ID != "e10" {
		t.Fatalf("GetSeq: %+v %v", e, err)
	}
}

func TestAppliedIndexInSameTransaction(t *testing.T) {
	d := mustOpen(t)
	err := d.Update(func(tx *Tx) error {
		if _, err := tx.Append("s", []NewEvent{ev("e1", "t", `1`)}); err != nil {
			return err
		}
		return tx.SetApplied(42, 3)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failing transaction rolls back both the events and the index.
	boom := errors.New("boom")
	err = d.Update(func(tx *Tx) error {
		if _, err := tx.Append("s", []NewEvent{ev("e2", "t", `2`)}); err != nil {
			return err
		}
		if err := tx.SetApplied(43, 3); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	idx, term, _ := d.Applied()
	si, _ := d.Store("s")
	if idx != 42 || term != 3 || si.LastSeq != 1 {
		t.Fatalf("applied=%d term=%d lastSeq=%d", idx, term, si.LastSeq)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	d, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, d, "s", ev("e1", "t", `1`), ev("e2", "t", `2`))
	before, err := d.Store("s")
	if err != nil || before.LastSeq != 2 {
		t.Fatalf("before close: %+v %v", before, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Store("s"); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed DB read: %v", err)
	}
	if err := d.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
	d2, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	after, err := d2.Store("s")
	if err != nil || before != after {
		t.Fatalf("after reopen %+v (%v), before %+v", after, err, before)
	}
	if err := d2.VerifyChain("s"); err != nil {
		t.Fatal(err)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotAndReplace(t *testing.T) {
	src := mustOpen(t)
	mustAppend(t, src, "s", ev("e1", "t", `1`), ev("e2", "t", `2`))
	if err := src.Update(func(tx *Tx) error { return tx.SetApplied(10, 2) }); err != nil {
		t.Fatal(err)
	}
	snap, err := src.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot began are not in it.
	done := make(chan error, 1)
	go func() {
		done <- src.Update(func(tx *Tx) error { _, err := tx.Append("s", []NewEvent{ev("e3", "t", `3`)}); return err })
	}()
	if idx, term := snap.Applied(); idx != 10 || term != 2 {
		t.Fatalf("snapshot applied %d/%d", idx, term)
	}
	var buf bytes.Buffer
	if n, err := snap.WriteTo(&buf); err != nil || n != snap.Size() {
		t.Fatalf("wrote %d bytes, Size %d: %v", n, snap.Size(), err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("append during the snapshot: %v", err)
	}

	dst := mustOpen(t)
	mustAppend(t, dst, "junk", ev("j", "t", `0`))
	if err := dst.Replace(&buf); err != nil {
		t.Fatal(err)
	}
	si, err := dst.Store("s")
	if err != nil || si.LastSeq != 2 {
		t.Fatalf("restored store: %+v %v", si, err)
	}
	if _, err := dst.Store("junk"); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("old content survived replace: %v", err)
	}
	if idx, _, _ := dst.Applied(); idx != 10 {
		t.Fatalf("applied after replace = %d", idx)
	}
	// A corrupt stream is refused and the old log stays usable.
	if err := dst.Replace(bytes.NewReader([]byte("not a bolt file"))); err == nil {
		t.Fatal("replace with garbage succeeded")
	}
	if si, err := dst.Store("s"); err != nil || si.LastSeq != 2 {
		t.Fatalf("after failed replace: %+v %v", si, err)
	}
}

func TestChangedFiresOnAppend(t *testing.T) {
	d := mustOpen(t)
	ch := d.Changed()
	select {
	case <-ch:
		t.Fatal("fired before any append")
	default:
	}
	if err := d.Update(func(tx *Tx) error { return tx.SetApplied(1, 1) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("fired without an append")
	default:
	}
	mustAppend(t, d, "s", ev("e", "t", `1`))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire after append")
	}
}

// TestStoreChangedFiresOnlyForItsStore: a reader waiting on one store is
// woken by that store's appends, not by every store's.
func TestStoreChangedFiresOnlyForItsStore(t *testing.T) {
	d := mustOpen(t)
	a, b := d.StoreChanged("a"), d.StoreChanged("b")
	if d.StoreChanged("a") != a {
		t.Fatal("two waiters of one store got different channels")
	}
	mustAppend(t, d, "b", ev("e1", "t", `1`))
	select {
	case <-a:
		t.Fatal("an append to b woke a reader of a")
	default:
	}
	select {
	case <-b: // closed by the Update that committed the append
	default:
		t.Fatal("an append to b did not wake a reader of b")
	}
	mustAppend(t, d, "a", ev("e2", "t", `1`))
	select {
	case <-a:
	default:
		t.Fatal("an append to a did not wake a reader of a")
	}
	if d.StoreChanged("a") == a {
		t.Fatal("a fired channel was handed out again")
	}
}

func TestConcurrentReadersDuringAppends(t *testing.T) {
	d := mustOpen(t)
	var wg sync.WaitGroup
	var failed atomic.Bool // the writer gave up: readers must not wait for 200
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			// Not mustAppend: t.Fatal must not be called off the test's
			// goroutine.
			if err := d.Update(func(tx *Tx) error {
				_, err := tx.Append("s", []NewEvent{ev(fmt.Sprintf("e%d", i), "t", `1`)})
				return err
			}); err != nil {
				t.Errorf("append %d: %v", i, err)
				failed.Store(true)
				return
			}
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var after uint64
			for after < 200 && !failed.Load() {
				evs, next, err := d.Read("s", ReadOptions{After: after, Limit: 50})
				if err != nil {
					t.Error(err)
					return
				}
				for i, e := range evs {
					if e.Seq != after+uint64(i)+1 {
						t.Errorf("gap: got seq %d after %d", e.Seq, after+uint64(i))
						return
					}
				}
				after = next
			}
		}()
	}
	wg.Wait()
}

func TestNodes(t *testing.T) {
	d := mustOpen(t)
	err := d.Update(func(tx *Tx) error {
		if err := tx.SetNode(NodeMeta{ID: "b", RaftAddr: "r2:1", HTTPAddr: "https://h2:1"}); err != nil {
			return err
		}
		for _, bad := range []NodeMeta{
			{ID: strings.Repeat("x", 40000), RaftAddr: "r:1", HTTPAddr: "h:1"},
			{ID: "c d", RaftAddr: "r:1", HTTPAddr: "h:1"},
			{ID: "c", RaftAddr: "r", HTTPAddr: "h:1"},
			{ID: "c", RaftAddr: "r:1", HTTPAddr: "h:0"},
			{ID: "c", RaftAddr: strings.Repeat("r", 300) + ":1", HTTPAddr: "h:1"},
		} {
			if err := tx.SetNode(bad); !errors.Is(err, ErrInvalidNode) {
				t.Errorf("%.40q: %v", bad.ID, err)
			}
		}
		return tx.SetNode(NodeMeta{ID: "a", RaftAddr: "r1:1", HTTPAddr: "h1:1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := d.Nodes()
	if len(ns) != 2 || ns[0].ID != "a" || ns[1].HTTPAddr != "https://h2:1" {
		t.Fatalf("nodes = %+v", ns)
	}
	if err := d.Update(func(tx *Tx) error { return tx.DeleteNode("a") }); err != nil {
		t.Fatal(err)
	}
	ns, _ = d.Nodes()
	if len(ns) != 1 || ns[0].ID != "b" {
		t.Fatalf("after delete = %+v", ns)
	}
}

func BenchmarkAppendBatch100(b *testing.B) {
	d := mustOpen(b)
	data := bytes.Repeat([]byte("x"), 500)
	data = append(append([]byte(`"`), data...), '"')
	batch := make([]NewEvent, 100)
	b.SetBytes(int64(100 * len(data)))
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j] = NewEvent{ID: fmt.Sprintf("e%d-%d", i, j), Type: "store/order/created", Version: "1", Timestamp: baseTime, Data: data}
		}
		if err := d.Update(func(tx *Tx) error { _, err := tx.Append("bench", batch); return err }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// stalledWriter takes the first write and then blocks, as a backup reader
// that stopped reading does, until Interrupt.
type stalledWriter struct {
	once     sync.Once
	wrote    chan struct{}
	unblock  chan struct{}
	interupt sync.Once
}

func (s *stalledWriter) Write(p []byte) (int, error) {
	first := false
	s.once.Do(func() { first = true; close(s.wrote) })
	if first {
		return len(p), nil
	}
	<-s.unblock
	return 0, errors.New("write deadline exceeded")
}

func (s *stalledWriter) Interrupt() { s.interupt.Do(func() { close(s.unblock) }) }

// TestSlowBackupDoesNotHoldASnapshotInstall: a backup whose reader has
// stopped holds a read transaction; installing a snapshot interrupts it
// instead of waiting behind it (and every write behind the install).
func TestSlowBackupDoesNotHoldASnapshotInstall(t *testing.T) {
	src := mustOpen(t)
	for i := 0; i < 50; i++ {
		mustAppend(t, src, "s", ev(fmt.Sprintf("e%d", i), "t", `"`+strings.Repeat("x", 2000)+`"`))
	}
	var snap bytes.Buffer
	if _, err := src.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	dst := mustOpen(t)
	mustAppend(t, dst, "old", ev("o", "t", `0`))
	sw := &stalledWriter{wrote: make(chan struct{}), unblock: make(chan struct{})}
	backup := make(chan error, 1)
	go func() {
		_, err := dst.WriteToContext(context.Background(), sw)
		backup <- err
	}()
	<-sw.wrote // the backup holds its read transaction now
	replaced := make(chan error, 1)
	go func() { replaced <- dst.Replace(&snap) }()
	select {
	case err := <-replaced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the snapshot install waited behind a stalled backup")
	}
	if err := <-backup; !errors.Is(err, ErrInterrupted) {
		t.Fatalf("the stalled backup ended with %v", err)
	}
	if si, err := dst.Store("s"); err != nil || si.LastSeq != 50 {
		t.Fatalf("after the install: %+v %v", si, err)
	}
}
