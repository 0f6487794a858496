package log

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-io/herald/internal/benchenv"
)

// BenchmarkReadAtSize reads 100 events at a random position of one store
// as the log grows (the scale scenario's read, without HTTP): one
// sub-benchmark per size, the same file appended to between them.
// HERALD_BENCH_READ_SIZES (comma-separated event counts, default
// 100000,1000000) sets the sizes:
//
//	HERALD_BENCH_READ_SIZES=100000,1000000,10000000 go test -run XXX -bench ReadAtSize -benchtime 20000x ./log/
func BenchmarkReadAtSize(b *testing.B) {
	sizes, err := benchenv.Sizes("HERALD_BENCH_READ_SIZES", 100, 100_000, 1_000_000)
	if err != nil {
		b.Fatal(err)
	}
	// Opened without openAt's check on cleanup, which would read every
	// page of a 10 M-event file.
	d, err := Open(filepath.Join(b.TempDir(), "events.db"), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data := []byte(`"` + strings.Repeat("x", 510) + `"`) // 512 bytes, as the benchmarks publish
	batch := make([]NewEvent, 1000)
	have := 0
	for _, size := range sizes {
		for have < size {
			n := min(len(batch), size-have)
			for j := range n {
				batch[j] = NewEvent{ID: fmt.Sprintf("e%015d", have+j), Type: "store/order/created", Version: "1", Timestamp: baseTime, Data: data}
			}
			if err := d.Update(func(tx *Tx) error { _, err := tx.Append("bench", batch[:n]); return err }); err != nil {
				b.Fatal(err)
			}
			have += n
		}
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			for b.Loop() {
				evs, _, err := d.Read("bench", ReadOptions{After: uint64(rand.IntN(size - 100)), Limit: 100})
				if err != nil || len(evs) != 100 {
					b.Fatalf("read: %d events, %v", len(evs), err)
				}
			}
		})
	}
}
