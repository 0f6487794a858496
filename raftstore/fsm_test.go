package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/testutil"
	"github.com/herald-io/herald/internal/wire"
	hlog "github.com/herald-io/herald/log"
)

// mustDB is a temporary event log, checked when the test ends.
func mustDB(t *testing.T) *hlog.DB { return testutil.TempDB(t) }

func mustFSM(t *testing.T, d *hlog.DB) *fsm {
	t.Helper()
	f, err := newFSM(d, testutil.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// mustApply applies append entries and fails on any request's error.
func mustApply(t *testing.T, f *fsm, logs ...*raft.Log) {
	t.Helper()
	for i, res := range f.ApplyBatch(logs) {
		rs, ok := res.([]AppendResult)
		if !ok {
			t.Fatalf("entry %d: result %T", logs[i].Index, res)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("entry %d: %v", logs[i].Index, r.Err)
			}
		}
	}
}

func appendEntry(index uint64, store string, ids ...string) *raft.Log {
	var evs []hlog.NewEvent
	for _, id := range ids {
		evs = append(evs, hlog.NewEvent{ID: id, Type: "t", Version: "1", Timestamp: 1, Data: []byte(`{}`)})
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: EncodeAppend([]AppendRequest{{Store: store, Events: evs}})}
}

func TestCommandRoundTrip(t *testing.T) {
	reqs := []AppendRequest{
		{Store: "a", Events: []hlog.NewEvent{{ID: "1", Type: "x/y", Version: "2", Timestamp: 99, Data: []byte(`{"k": 1}`), IdempotencyKey: "key"}}},
		{Store: "b", Events: []hlog.NewEvent{{ID: "2", Type: "z", Version: "1", Timestamp: 100, Data: []byte(`[]`)}, {ID: "3", Type: "z", Version: "1", Timestamp: 100, Data: []byte(`null`)}}},
	}
	b := EncodeAppend(reqs)
	if b[0] != cmdVersion1 || cmdType(b[1]) != cmdAppend {
		t.Fatalf("header %v", b[:2])
	}
	got, err := decodeAppend(wire.NewReader(b[2:]))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Events[0].IdempotencyKey != "key" || string(got[0].Events[0].Data) != `{"k": 1}` ||
		got[1].Store != "b" || len(got[1].Events) != 2 || got[1].Events[1].Timestamp != 100 {
		t.Fatalf("round trip = %+v", got)
	}
	// Every truncation is an error, never a panic.
	for i := 2; i < len(b); i++ {
		if _, err := decodeAppend(wire.NewReader(b[2:i])); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
}

func TestFSMBatchAndSkipApplied(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	res := f.ApplyBatch([]*raft.Log{
		appendEntry(1, "s", "a"),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		appendEntry(3, "s", "b", "c"),
	})
	r3 := res[2].([]AppendResult)
	if r3[0].Err != nil || r3[0].Events[1].Event.Seq != 3 {
		t.Fatalf("results = %+v", r3)
	}
	if idx, _, _ := d.Applied(); idx != 3 {
		t.Fatalf("applied = %d", idx)
	}
	// A replay after restart (raft re-delivers entries from its last
	// snapshot) must not append again.
	f2 := mustFSM(t, d)
	res = f2.ApplyBatch([]*raft.Log{appendEntry(1, "s", "x"), appendEntry(3, "s", "y"), appendEntry(4, "s", "d")})
	if res[0] != nil || res[1] != nil {
		t.Fatalf("skipped entries have results %v, %v", res[0], res[1])
	}
	if r4, ok := res[2].([]AppendResult); !ok || r4[0].Err != nil || r4[0].Events[0].Event.Seq != 4 {
		t.Fatalf("entry 4: %+v", res[2])
	}
	si, _ := d.Store("s")
	if si.LastSeq != 4 {
		t.Fatalf("last seq %d after replay, want 4 (only entry 4 is new)", si.LastSeq)
	}
	if _, err := d.Get("s", "x"); !errors.Is(err, hlog.ErrEventNotFound) {
		t.Fatal("replayed entry 1 was applied twice")
	}
	if i, _ := f2.appliedIndex(); i != 4 {
		t.Fatalf("fsm applied %d", i)
	}
}

func TestFSMInvalidRequestIsAResultNotAFailure(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	bad := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: EncodeAppend([]AppendRequest{
		{Store: "s", Events: []hlog.NewEvent{{ID: "ok", Type: "t", Version: "1", Timestamp: 1, Data: []byte(`1`)}}},
		{Store: "BAD", Events: []hlog.NewEvent{{ID: "x", Type: "t", Version: "1", Timestamp: 1, Data: []byte(`1`)}}},
	})}
	res := f.ApplyBatch([]*raft.Log{bad})[0].([]AppendResult)
	if res[0].Err != nil || !errors.Is(res[1].Err, hlog.ErrInvalidStore) {
		t.Fatalf("results = %+v", res)
	}
	if idx, _, _ := d.Applied(); idx != 1 {
		t.Fatalf("applied = %d", idx)
	}
}

// TestFSMSnapshotIsMetadataOnly: the FSM's snapshot captures the applied
// index and term, and Persist writes only the metadata header; what a
// follower installs is the live log, streamed later (snapshotStore.Open).
func TestFSMSnapshotIsMetadataOnly(t *testing.T) {
	src := mustDB(t)
	f := mustFSM(t, src)
	mustApply(t, f, appendEntry(1, "s", "a", "b"))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, appendEntry(2, "s", "c")) // after the snapshot point
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if sink.cancelled {
		t.Fatal("a successful Persist cancelled its sink")
	}
	if idx, term, ok := decodeMetaHeader(sink.Bytes()); !ok || idx != 1 || term != 1 {
		t.Fatalf("persisted %d bytes %q: want the metadata header at 1/1", sink.Len(), sink.Bytes())
	}
}

// TestFSMRestoreNewerStateSkipsWhatItHolds: a follower installs a state
// newer than the snapshot's index (the leader streams its current log).
// The FSM then skips the entries after the snapshot's index that the
// state already holds, by the state's applied index and not by event ids
// (here the replayed entries carry other ids, which would be appended if
// they were applied), and applies the next one.
func TestFSMRestoreNewerStateSkipsWhatItHolds(t *testing.T) {
	src := mustDB(t)
	f := mustFSM(t, src)
	for i := uint64(1); i <= 5; i++ {
		mustApply(t, f, appendEntry(i, "s", fmt.Sprintf("e%d", i)))
	}
	// The snapshot was taken at index 3; the state streamed is at 5.
	var state bytes.Buffer
	if _, err := src.WriteTo(&state); err != nil {
		t.Fatal(err)
	}

	dst := mustDB(t)
	mustApply(t, mustFSM(t, dst), appendEntry(1, "other", "x"))
	g := mustFSM(t, dst)
	if err := g.Restore(io.NopCloser(&state)); err != nil {
		t.Fatal(err)
	}
	if i, _ := g.appliedIndex(); i != 5 {
		t.Fatalf("applied index after restore %d, want 5", i)
	}
	res := g.ApplyBatch([]*raft.Log{appendEntry(4, "s", "not-e4"), appendEntry(5, "s", "not-e5"), appendEntry(6, "s", "e6")})
	if res[0] != nil || res[1] != nil {
		t.Fatalf("entries the state holds were applied: %v %v", res[0], res[1])
	}
	mustApply(t, f, appendEntry(6, "s", "e6"))
	a, _ := src.Store("s")
	b, _ := dst.Store("s")
	if b.LastSeq != 6 || a.HeadHash != b.HeadHash {
		t.Fatalf("after the install: %+v, leader %+v", b, a)
	}
	if _, err := dst.Store("other"); !errors.Is(err, hlog.ErrStoreNotFound) {
		t.Fatalf("the old state survived the install: %v", err)
	}
}

// TestFSMRestoreHeaderKeepsTheLiveLog: the metadata header (what a local
// snapshot store hands herald recover) keeps the live log when it is at
// the header's index or later, and is ErrEventLogLost when it is behind.
func TestFSMRestoreHeaderKeepsTheLiveLog(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	mustApply(t, f, appendEntry(1, "s", "a"), appendEntry(2, "s", "b"))
	g := mustFSM(t, d)
	if err := g.Restore(io.NopCloser(bytes.NewReader(encodeMetaHeader(2, 1)))); err != nil {
		t.Fatal(err)
	}
	if si, _ := d.Store("s"); si.LastSeq != 2 {
		t.Fatalf("live log changed: %+v", si)
	}
	if i, _ := g.appliedIndex(); i != 2 {
		t.Fatalf("applied %d", i)
	}
	err := g.Restore(io.NopCloser(bytes.NewReader(encodeMetaHeader(3, 1))))
	if !errors.Is(err, ErrEventLogLost) {
		t.Fatalf("restore of a header past the log: %v", err)
	}
}

func TestUnknownCommandIsFatal(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	defer func() {
		if recover() == nil {
			t.Fatal("an undecodable command was skipped instead of stopping the FSM")
		}
		if idx, _, _ := d.Applied(); idx != 0 {
			t.Fatalf("applied index moved to %d", idx)
		}
	}()
	f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte{9, 9}}})
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) Close() error  { return nil }

// TestFSMRuleBreakingNodeIsAResult: a set-node entry with a 40,000-byte
// id (which once made bbolt refuse the key, and the FSM retry that entry
// forever on every replica) is refused by the rules, as a result: the
// entries around it in the same batch apply, and the applied index moves
// past it.
func TestFSMRuleBreakingNodeIsAResult(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	bad := &raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: encodeSetNode(hlog.NodeMeta{ID: strings.Repeat("x", 40000), RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"})}
	out := f.ApplyBatch([]*raft.Log{appendEntry(1, "s", "a"), bad, appendEntry(3, "s", "b")})
	if err, ok := out[1].(error); !ok || !errors.Is(err, hlog.ErrInvalidNode) {
		t.Fatalf("result of the bad entry: %#v", out[1])
	}
	if idx, _, _ := d.Applied(); idx != 3 {
		t.Fatalf("applied index %d, want 3", idx)
	}
	if si, err := d.Store("s"); err != nil || si.LastSeq != 2 {
		t.Fatalf("store s: %+v %v", si, err)
	}
	if nodes, _ := d.Nodes(); len(nodes) != 0 {
		t.Fatalf("a refused node was recorded: %d", len(nodes))
	}
	if f.storageError() != nil {
		t.Fatalf("counted as a storage failure: %v", f.storageError())
	}
}

// TestFSMRefusedEntryHasNoEffect: an entry that bbolt refuses (here a
// subscription whose id makes a bucket name over the key limit, which the
// rules do not catch) is rolled back whole, its result is ErrRefused, and
// the rest of the batch applies: the same outcome on every replica,
// however the entries were batched.
func TestFSMRefusedEntryHasNoEffect(t *testing.T) {
	d := mustDB(t)
	f := mustFSM(t, d)
	sub := goldenSub()
	sub.ID = "sub_" + strings.Repeat("x", 40000)
	sub.SensitiveHeaders = nil // a plaintext sensitive value would be refused first
	bad := &raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: encodeCreateSub(&sub, 0)}
	out := f.ApplyBatch([]*raft.Log{appendEntry(1, "s", "a"), bad, appendEntry(3, "s", "b")})
	if err, ok := out[1].(error); !ok || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("result of the refused entry: %#v", out[1])
	}
	if _, ok := out[2].([]AppendResult); !ok {
		t.Fatalf("entry after it: %#v", out[2])
	}
	if idx, _, _ := d.Applied(); idx != 3 {
		t.Fatalf("applied index %d, want 3", idx)
	}
	if si, err := d.Store("s"); err != nil || si.LastSeq != 2 {
		t.Fatalf("store s: %+v %v", si, err)
	}
	if subs, _ := d.Subscriptions(""); len(subs) != 0 {
		t.Fatalf("the refused subscription left %d records", len(subs))
	}
}

// Recovery bounds its retries: an event log that cannot be written fails
// the batch after giveUpAfter attempts, every later batch at once, and the
// snapshot that would record the state as complete.
func TestFSMGivesUpOnStorageFailureWhenBounded(t *testing.T) {
	d, err := hlog.Open(t.TempDir()+"/events.db", hlog.Options{Logger: testutil.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f := mustFSM(t, d)
	f.giveUpAfter = 2
	d.Close() // every write now fails, as a dead disk's would
	done := make(chan []interface{})
	go func() { done <- f.ApplyBatch([]*raft.Log{appendEntry(1, "s", "a")}) }()
	var out []interface{}
	select {
	case out = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ApplyBatch still retrying after 30s")
	}
	if err, ok := out[0].(error); !ok || !errors.Is(err, ErrShutdown) {
		t.Fatalf("result %v", out[0])
	}
	if f.failure() == nil {
		t.Fatal("failure not recorded")
	}
	out = f.ApplyBatch([]*raft.Log{appendEntry(2, "s", "b")})
	if _, ok := out[0].(error); !ok {
		t.Fatalf("a later batch applied after an earlier one failed: %v", out[0])
	}
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("snapshot taken after a storage failure")
	}
}
