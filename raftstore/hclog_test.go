package raftstore

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/herald-io/herald/internal/testutil"
)

// raftLogger is what node.Open gives raftstore, over a recorder.
func raftLogger(level slog.Level) (*testutil.LogRecorder, hclog.Logger) {
	rec := testutil.NewLogRecorder(level)
	return rec, newHCLogger(rec.Logger().With("subsystem", "raft", "node", "n1"), "raft")
}

type fakeRaft struct{}

func (fakeRaft) String() string { return "Node at 127.0.0.1:7001 [Follower]" }

func only(t *testing.T, rec *testutil.LogRecorder) testutil.LogRecord {
	t.Helper()
	rs := rec.Records()
	if len(rs) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

func TestHCLogPairsBecomeAttributes(t *testing.T) {
	rec, l := raftLogger(slog.LevelDebug)
	_, _, line, _ := runtime.Caller(0)
	l.Info("entering follower state", "follower", fakeRaft{}, "leader-address", raft.ServerAddress("127.0.0.1:7002"), "leader-id", raft.ServerID("n2"))
	r := only(t, rec)
	if r.Message != "entering follower state" || r.Level != slog.LevelInfo {
		t.Fatalf("message %q level %v: the message must be raft's message alone", r.Message, r.Level)
	}
	want := map[string]string{
		"subsystem": "raft", "node": "n1", // from the slog logger
		"follower": "Node at 127.0.0.1:7001 [Follower]", "leader-address": "127.0.0.1:7002", "leader-id": "n2",
	}
	for k, v := range want {
		if got := r.Str(k); got != v {
			t.Errorf("%s = %q, want %q (attrs %v)", k, got, v, r.Attrs)
		}
	}
	if len(r.Attrs) != len(want) {
		t.Errorf("attrs %v, want exactly %v", r.Attrs, want)
	}
	// The raft-typed values arrive as plain strings, which every handler
	// (text, JSON) prints as such.
	if v, _ := r.Attr("leader-id"); v.Kind() != slog.KindString {
		t.Errorf("leader-id is %v, want a string", v.Kind())
	}
	// The record's source is the caller's line, not the adapter.
	f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
	if !strings.HasSuffix(f.File, "hclog_test.go") || f.Line != line+1 {
		t.Errorf("source %s:%d, want hclog_test.go:%d", f.File, f.Line, line+1)
	}
}

func TestHCLogValues(t *testing.T) {
	rec, l := raftLogger(slog.LevelDebug)
	l.Warn("odd", "error", errors.New("log not found"), "index", uint64(7), "cmd", hclog.Fmt("%#v", struct{ A int }{1}),
		"server", raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "a:1"}, 42, "non-string key", "lone")
	r := only(t, rec)
	for k, v := range map[string]string{
		"error": "log not found", "index": "7", "cmd": "struct { A int }{A:1}", "server": "{Voter n2 a:1}",
		"42": "non-string key", hclog.MissingKey: "lone",
	} {
		if got := r.Str(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if v, _ := r.Attr("index"); v.Kind() != slog.KindUint64 {
		t.Errorf("index kept as %v, want a number", v.Kind())
	}
}

func TestHCLogLevels(t *testing.T) {
	rec, l := raftLogger(slog.LevelDebug)
	l.Trace("t")
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	l.Log(hclog.Warn, "lw")
	l.Log(hclog.Off, "never")
	want := []struct {
		msg   string
		level slog.Level
	}{{"d", slog.LevelDebug}, {"i", slog.LevelInfo}, {"w", slog.LevelWarn}, {"e", slog.LevelError}, {"lw", slog.LevelWarn}}
	rs := rec.Records()
	if len(rs) != len(want) {
		t.Fatalf("records %+v: trace is below the handler's debug level, off is never logged", rs)
	}
	for i, w := range want {
		if rs[i].Message != w.msg || rs[i].Level != w.level {
			t.Errorf("record %d: %q at %v, want %q at %v", i, rs[i].Message, rs[i].Level, w.msg, w.level)
		}
	}
	if l.IsTrace() || !l.IsDebug() || !l.IsWarn() || l.GetLevel() != hclog.Debug {
		t.Errorf("debug handler: IsTrace %v IsDebug %v GetLevel %v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}
	_, quiet := raftLogger(slog.LevelWarn)
	if quiet.IsInfo() || !quiet.IsWarn() || quiet.GetLevel() != hclog.Warn {
		t.Errorf("warn handler: IsInfo %v IsWarn %v GetLevel %v", quiet.IsInfo(), quiet.IsWarn(), quiet.GetLevel())
	}
	// SetLevel raises the bar for every logger of the same root.
	sub := l.With("k", "v")
	l.SetLevel(hclog.Error)
	sub.Warn("dropped")
	sub.Error("kept")
	if rs := rec.Find("dropped"); len(rs) != 0 {
		t.Error("SetLevel(Error) did not reach a derived logger")
	}
	if rs := rec.Find("kept"); len(rs) != 1 || rs[0].Str("k") != "v" {
		t.Errorf("kept: %+v", rs)
	}
	l.SetLevel(hclog.NoLevel)
	if !sub.IsDebug() {
		t.Error("SetLevel(NoLevel) did not hand the level back to the handler")
	}
}

func TestHCLogWithAndNamed(t *testing.T) {
	rec, l := raftLogger(slog.LevelInfo)
	if l.Name() != "raft" {
		t.Fatalf("name %q", l.Name())
	}
	snap := l.With("path", "/d/snapshots/1", "id", "a").With("id", "b").Named("snapshot")
	if got := snap.ImpliedArgs(); len(got) != 4 || got[0] != "path" || got[3] != "b" {
		t.Fatalf("implied args %v: a key given again replaces its value", got)
	}
	if snap.Name() != "raft.snapshot" {
		t.Fatalf("named %q", snap.Name())
	}
	snap.Info("creating new snapshot", "index", 9)
	l.Info("root")
	l.ResetNamed("other").Info("reset")
	r := rec.Find("creating new snapshot")
	if len(r) != 1 {
		t.Fatalf("records %+v", rec.Records())
	}
	for k, v := range map[string]string{"node": "n1", "path": "/d/snapshots/1", "id": "b", "index": "9", "logger": "raft.snapshot"} {
		if got := r[0].Str(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if root := rec.Find("root"); len(root) != 1 || root[0].Str("logger") != "" || root[0].Str("path") != "" {
		t.Errorf("the root logger got a sub-logger's attributes: %+v", root)
	}
	if reset := rec.Find("reset"); len(reset) != 1 || reset[0].Str("logger") != "other" {
		t.Errorf("reset named: %+v", reset)
	}
}

func TestHCLogStandardLogger(t *testing.T) {
	rec, l := raftLogger(slog.LevelDebug)
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[WARN] disk slow\n[DEBUG] detail")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("[INFO] forced")
	l.StandardLogger(nil).Print("plain")
	want := []struct {
		msg   string
		level slog.Level
	}{{"disk slow", slog.LevelWarn}, {"detail", slog.LevelDebug}, {"[INFO] forced", slog.LevelError}, {"plain", slog.LevelInfo}}
	rs := rec.Records()
	if len(rs) != len(want) {
		t.Fatalf("records %+v", rs)
	}
	for i, w := range want {
		if rs[i].Message != w.msg || rs[i].Level != w.level || rs[i].Str("node") != "n1" {
			t.Errorf("record %d: %+v, want %q at %v", i, rs[i], w.msg, w.level)
		}
	}
}

// TestHCLogStartupMessagesAreNotWarnings: the WARN lines raft logs on every
// normal start (seen in `herald dev`) come out at INFO, with their
// arguments; the same messages in the situations they do signal trouble
// stay WARN.
func TestHCLogStartupMessagesAreNotWarnings(t *testing.T) {
	cases := []struct {
		name string
		msg  string
		args []any
		want slog.Level
	}{
		{"first election of a bootstrapped node", "heartbeat timeout reached, starting election",
			[]any{"last-leader-addr", raft.ServerAddress(""), "last-leader-id", raft.ServerID("")}, slog.LevelInfo},
		{"a lost leader", "heartbeat timeout reached, starting election",
			[]any{"last-leader-addr", raft.ServerAddress("127.0.0.1:7001"), "last-leader-id", raft.ServerID("n1")}, slog.LevelWarn},
		{"a joining node not yet added", "no known peers, aborting election", nil, slog.LevelInfo},
		{"new follower with an empty log", "failed to get previous log",
			[]any{"previous-index", uint64(4), "last-index", uint64(0), "error", raft.ErrLogNotFound}, slog.LevelInfo},
		{"follower with a gap", "failed to get previous log",
			[]any{"previous-index", uint64(40), "last-index", uint64(12), "error", raft.ErrLogNotFound}, slog.LevelWarn},
		{"leader: new follower with an empty log", "appendEntries rejected, sending older logs",
			[]any{"peer", raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:7002"}, "next", uint64(1)}, slog.LevelInfo},
		{"leader: follower behind or diverged", "appendEntries rejected, sending older logs",
			[]any{"peer", raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:7002"}, "next", uint64(13)}, slog.LevelWarn},
		{"other warnings stay", "failed to contact quorum of nodes, stepping down", nil, slog.LevelWarn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, l := raftLogger(slog.LevelDebug)
			l.Warn(tc.msg, tc.args...)
			r := only(t, rec)
			if r.Level != tc.want || r.Message != tc.msg {
				t.Fatalf("%q at %v, want %v", r.Message, r.Level, tc.want)
			}
			if len(r.Attrs) != 2+(len(tc.args)+1)/2 {
				t.Fatalf("arguments lost: %v", r.Attrs)
			}
			// At the default level of `herald dev` (warn) only the real
			// warnings are printed.
			rec, l = raftLogger(slog.LevelWarn)
			l.Warn(tc.msg, tc.args...)
			if n := len(rec.Records()); (n == 1) != (tc.want == slog.LevelWarn) {
				t.Fatalf("%d records at level warn", n)
			}
		})
	}
}
