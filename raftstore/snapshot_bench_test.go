package raftstore

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/benchenv"
	"github.com/herald-io/herald/internal/testutil"
	hlog "github.com/herald-io/herald/log"
)

// benchSnapshotStore is the snapshot store the node runs with.
func benchSnapshotStore(b *testing.B, dir string, db *hlog.DB) raft.SnapshotStore {
	s, err := newSnapshotStore(dir, db, testutil.Quiet(), false)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSnapshotPersist measures what raft does every SnapshotThreshold
// entries (FSM.Snapshot, then Persist into the snapshot store and Close,
// fsync included) on an event log of 10,000 and of 200,000 events of 512
// bytes (HERALD_BENCH_SNAPSHOT_SIZES: other counts, comma-separated), and
// reports the bytes the snapshot store then holds.
//
//	go test -run XXX -bench SnapshotPersist -benchtime 20x ./raftstore/
//	HERALD_BENCH_SNAPSHOT_SIZES=100000,10000000 go test -run XXX -bench SnapshotPersist -benchtime 20x ./raftstore/
func BenchmarkSnapshotPersist(b *testing.B) {
	data := []byte(`"` + strings.Repeat("x", 510) + `"`)
	sizes, err := benchenv.Sizes("HERALD_BENCH_SNAPSHOT_SIZES", 500, 10_000, 200_000)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			db, err := hlog.Open(filepath.Join(dir, "events.db"), hlog.Options{Logger: testutil.Quiet()})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			f, err := newFSM(db, testutil.Quiet())
			if err != nil {
				b.Fatal(err)
			}
			var idx uint64
			for done := 0; done < n; done += 500 {
				evs := make([]hlog.NewEvent, 500)
				for i := range evs {
					evs[i] = hlog.NewEvent{ID: fmt.Sprintf("e%d", done+i), Type: "t", Version: "1", Timestamp: 1, Data: data}
				}
				idx++
				l := &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: EncodeAppend([]AppendRequest{{Store: "s", Events: evs}})}
				if _, ok := f.ApplyBatch([]*raft.Log{l})[0].([]AppendResult); !ok {
					b.Fatal("fill failed")
				}
			}
			store := benchSnapshotStore(b, dir, db)
			_, trans := raft.NewInmemTransport("a:1")
			conf := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: "a:1", Suffrage: raft.Voter}}}
			// The fill's writeback would otherwise still be under way
			// and slow the snapshot's fsync by an amount that depends on
			// the fill, not on the log's size.
			syscall.Sync()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snap, err := f.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				sink, err := store.Create(1, idx+uint64(i), 1, conf, 1, trans)
				if err != nil {
					b.Fatal(err)
				}
				if err := snap.Persist(sink); err != nil {
					b.Fatal(err)
				}
				snap.Release()
			}
			b.StopTimer()
			var size int64
			filepath.WalkDir(filepath.Join(dir, "snapshots"), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if st, err := d.Info(); err == nil {
						size += st.Size()
					}
				}
				return nil
			})
			b.ReportMetric(float64(size), "snapshot-dir-bytes")
		})
	}
}
