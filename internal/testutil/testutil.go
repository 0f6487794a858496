package testutil

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// WaitFor polls cond until it holds, and fails the test (t.Fatalf, naming
// what) when it still does not after d. The first polls come quickly
// (1 ms), then the interval doubles up to 20 ms, so a fast condition is
// seen at once and a slow one costs at most 50 polls a second. cond runs on
// the test's goroutine and may itself call t.Fatal.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(interval) // polling interval, not synchronisation
		interval = min(2*interval, 20*time.Millisecond)
	}
}

// TempDB opens a new event log in t.TempDir() with a small initial mmap
// (4 MiB: tests write little, and many logs are open at once). When the
// test ends it runs bbolt's consistency check and verifies the hash chain
// and the type index of every store, reporting problems with t.Errorf,
// and closes the log. A log the test closed itself is not checked again.
func TempDB(t testing.TB) *hlog.DB {
	t.Helper()
	d, err := hlog.Open(filepath.Join(t.TempDir(), "events.db"), hlog.Options{InitialMmapSize: 4 << 20, Logger: Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Check(); errors.Is(err, hlog.ErrClosed) {
			return
		} else if err != nil {
			t.Errorf("bbolt check of %s: %v", d.Path(), err)
		}
		stores, err := d.Stores()
		if err != nil {
			t.Errorf("stores of %s: %v", d.Path(), err)
		}
		for _, s := range stores {
			if err := d.VerifyChain(s.Name); err != nil {
				t.Errorf("hash chain of store %s: %v", s.Name, err)
			}
			if err := d.VerifyTypes(s.Name); err != nil {
				t.Errorf("type index of store %s: %v", s.Name, err)
			}
		}
		if err := d.Close(); err != nil {
			t.Errorf("close %s: %v", d.Path(), err)
		}
	})
	return d
}

// Quiet returns a logger that discards everything, unless the environment
// variable HERALD_TEST_LOG is set: then it writes every record, debug
// included, to stderr.
func Quiet() *slog.Logger {
	if os.Getenv("HERALD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// Records are still formatted (into io.Discard), so every log call's
	// arguments are exercised.
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
