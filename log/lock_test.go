package log

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenOfALockedLogFailsQuickly: a second Open of a log another DB (in a
// real deployment: another herald process) holds fails within about a
// second with ErrLocked, naming the directory and the file, instead of
// waiting and reporting bbolt's bare "timeout". Once the holder closes,
// the log opens again.
func TestOpenOfALockedLogFailsQuickly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	first, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	start := time.Now()
	second, err := Open(path, Options{InitialMmapSize: 1 << 20})
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("opened a log that another DB holds")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	for _, want := range []string{"in use by another herald process", dir, "events.db"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if took > 2*time.Second {
		t.Errorf("took %v to fail, want about %v", took, lockTimeout)
	}
	// The offline checks see the lock too.
	if err := CheckFile(path); !errors.Is(err, ErrLocked) {
		t.Errorf("CheckFile of a held log: %v, want ErrLocked", err)
	}
	if err := PrepareRestore(path); !errors.Is(err, ErrLocked) {
		t.Errorf("PrepareRestore of a held log: %v, want ErrLocked", err)
	}
	if _, _, err := CompactFile(path); !errors.Is(err, ErrLocked) {
		t.Errorf("CompactFile of a held log: %v, want ErrLocked", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}
