package testutil

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	hlog "github.com/herald-io/herald/log"
)

// fatalTB records a Fatalf and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runTB runs fn with a fatalTB on its own goroutine and returns what it
// reported.
func runTB(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	msg := runTB(t, func(tb testing.TB) {
		WaitFor(tb, 5*time.Second, "third call", func() bool { calls++; return calls == 3 })
	})
	if msg != "" || calls != 3 {
		t.Fatalf("calls %d, failure %q", calls, msg)
	}
}

func TestWaitForFailsAtTheDeadline(t *testing.T) {
	start := time.Now()
	msg := runTB(t, func(tb testing.TB) {
		WaitFor(tb, 50*time.Millisecond, "something that never happens", func() bool { return false })
	})
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", el)
	}
	if !strings.Contains(msg, "something that never happens") || !strings.Contains(msg, "50ms") {
		t.Fatalf("failure message %q", msg)
	}
}

func TestTempDBIsClosedAfterTheTest(t *testing.T) {
	var d *hlog.DB
	t.Run("uses it", func(t *testing.T) {
		d = TempDB(t)
		err := d.Update(func(tx *hlog.Tx) error {
			_, err := tx.Append("s", []hlog.NewEvent{{ID: "e1", Type: "t", Version: "1", Timestamp: 1, Data: []byte(`1`)}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if _, err := d.Store("s"); !errors.Is(err, hlog.ErrClosed) {
		t.Fatalf("after the test the log is still open: %v", err)
	}
}

func TestLogRecorderFlattensWithAndGroups(t *testing.T) {
	rec := NewLogRecorder(slog.LevelInfo)
	l := rec.Logger().With("node", "n1").WithGroup("g").With("a", 1)
	l.Debug("dropped")
	l.Warn("kept", "b", "two", slog.Group("h", "c", true))
	rs := rec.Records()
	if len(rs) != 1 {
		t.Fatalf("%d records, want 1 (debug is below the level)", len(rs))
	}
	r := rs[0]
	if r.Level != slog.LevelWarn || r.Message != "kept" {
		t.Fatalf("record %+v", r)
	}
	for k, want := range map[string]string{"node": "n1", "g.a": "1", "g.b": "two", "g.h.c": "true"} {
		if got := r.Str(k); got != want {
			t.Errorf("%s = %q, want %q (attrs %v)", k, got, want, r.Attrs)
		}
	}
	if len(rec.Find("kept")) != 1 || len(rec.Find("dropped")) != 0 {
		t.Fatal("Find")
	}
}

func TestLoopbackAddrIsBelowTheEphemeralRange(t *testing.T) {
	lo, _ := ephemeralRange()
	for i := 0; i < 20; i++ {
		addr := LoopbackAddr(t)
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port >= lo || port < 10000 {
			t.Fatalf("port %d, want below %d", port, lo)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		l.Close()
	}
}
