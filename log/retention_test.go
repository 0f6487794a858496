package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTruncatedFileRefused: a file cut short is refused at open with
// ErrCorrupt, not served.
func TestTruncatedFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	d, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		mustAppend(t, d, "shop", ev(fmt.Sprintf("e%d", i), "t", `"`+strings.Repeat("x", 2000)+`"`))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// 100 KB of events: cut the file at 48 KB, inside the data.
	if err := os.Truncate(path, 48<<10); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{InitialMmapSize: 1 << 20})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("open of a truncated file: %v", err)
	}
}
