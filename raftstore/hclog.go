package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger adapts l for hashicorp/raft, which logs through hclog: every
// raft call becomes one slog record at the matching level, with raft's
// message as the message and its key/value pairs as attributes, so the
// attributes l carries (subsystem, node) stay on every line.
//
// name is the logger's hclog name. It is not repeated on every record (l's
// subsystem attribute already says "raft"); sub-loggers made with Named or
// ResetNamed add their name as the attribute "logger".
//
// A few of raft's WARN messages are expected on every normal start and
// are logged at INFO instead; see startupLevel.
func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &hcLogger{l: l, base: l, root: name, name: name, min: new(atomic.Int32)}
}

// hcLogger implements hclog.Logger over a *slog.Logger.
type hcLogger struct {
	l       *slog.Logger // base with the logger name and the implied args
	base    *slog.Logger // what newHCLogger was given
	root    string       // the name newHCLogger was given
	name    string
	implied []any
	// min is a level set with SetLevel, shared by every logger derived
	// from the same root; hclog.NoLevel (0) leaves it to l's handler.
	min *atomic.Int32
}

var _ hclog.Logger = (*hcLogger)(nil)

// slogLevel maps an hclog level to slog's; Trace is below Debug.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo // Info, NoLevel (hclog's default)
}

func (h *hcLogger) enabled(level hclog.Level) bool {
	switch level {
	case hclog.Off:
		return false
	case hclog.NoLevel:
		level = hclog.Info // as slogLevel has it
	}
	if m := hclog.Level(h.min.Load()); m != hclog.NoLevel && level < m {
		return false
	}
	return h.l.Enabled(context.Background(), slogLevel(level))
}

// emit logs one record. It must be called directly by the hclog.Logger
// method raft called, so that the record's source is raft's call site.
func (h *hcLogger) emit(level hclog.Level, msg string, args []any) {
	level = startupLevel(level, msg, args)
	if !h.enabled(level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // runtime.Callers, emit, the hclog method
	r := slog.NewRecord(time.Now(), slogLevel(level), msg, pcs[0])
	r.AddAttrs(attrs(args)...)
	_ = h.l.Handler().Handle(context.Background(), r)
}

// startupLevel lowers to INFO the WARN messages raft logs on every normal
// start of a cluster, identified by message and arguments:
//
//   - "heartbeat timeout reached, starting election" with no last leader:
//     a node that has not heard of any leader since it started (a
//     bootstrapped node's first election, or a restart). With a last
//     leader it means a leader was lost, and stays WARN.
//   - "no known peers, aborting election": a node with no configuration
//     at all, i.e. a joining node before the leader has added it.
//   - "failed to get previous log" with last-index 0, on a follower, and
//     "appendEntries rejected, sending older logs" with next 1, on the
//     leader: the two sides of a new member with an empty log being sent
//     the log from its start. A rejection by a follower that has entries
//     (a gap, a term conflict) stays WARN.
func startupLevel(level hclog.Level, msg string, args []any) hclog.Level {
	if level != hclog.Warn {
		return level
	}
	switch msg {
	case "heartbeat timeout reached, starting election":
		if id, ok := arg(args, "last-leader-id"); ok && fmt.Sprint(id) == "" {
			return hclog.Info
		}
	case "no known peers, aborting election":
		return hclog.Info
	case "failed to get previous log":
		if last, ok := arg(args, "last-index"); ok && fmt.Sprint(last) == "0" {
			return hclog.Info
		}
	case "appendEntries rejected, sending older logs":
		if next, ok := arg(args, "next"); ok && fmt.Sprint(next) == "1" {
			return hclog.Info
		}
	}
	return level
}

// arg returns the value of key in hclog's alternating key/value args.
func arg(args []any, key string) (any, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1], true
		}
	}
	return nil, false
}

// attrs turns hclog's alternating key/value args into slog attributes, as
// hclog would print them: a lone last value gets the key
// EXTRA_VALUE_AT_END, a key that is not a string is printed.
func attrs(args []any) []slog.Attr {
	out := make([]slog.Attr, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			out = append(out, slog.Any(hclog.MissingKey, value(args[i])))
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		out = append(out, slog.Any(k, value(args[i+1])))
	}
	return out
}

// value converts one hclog argument into something every slog handler
// prints the way hclog would: hclog's formatting types are formatted,
// errors and Stringers become their text, named basic types (raft's
// ServerID, ServerAddress) their basic value, and other values (structs
// such as raft.Server) their %v text. Basic values are kept as they are.
func value(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, time.Duration, time.Time, slog.Value, slog.LogValuer:
		return x
	case hclog.Format:
		if len(x) == 0 {
			return ""
		}
		f, _ := x[0].(string)
		return fmt.Sprintf(f, x[1:]...)
	case hclog.Hex:
		return fmt.Sprintf("0x%x", int(x))
	case hclog.Octal:
		return fmt.Sprintf("0%o", int(x))
	case hclog.Binary:
		return fmt.Sprintf("0b%b", int(x))
	case hclog.Quote:
		return fmt.Sprintf("%q", string(x))
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint()
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	return fmt.Sprintf("%v", v)
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) { h.emit(level, msg, args) }
func (h *hcLogger) Trace(msg string, args ...any)                  { h.emit(hclog.Trace, msg, args) }
func (h *hcLogger) Debug(msg string, args ...any)                  { h.emit(hclog.Debug, msg, args) }
func (h *hcLogger) Info(msg string, args ...any)                   { h.emit(hclog.Info, msg, args) }
func (h *hcLogger) Warn(msg string, args ...any)                   { h.emit(hclog.Warn, msg, args) }
func (h *hcLogger) Error(msg string, args ...any)                  { h.emit(hclog.Error, msg, args) }

func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs returns the key/value pairs added with With.
func (h *hcLogger) ImpliedArgs() []any { return append([]any(nil), h.implied...) }

// With returns a logger that adds args to every record. A key given again
// replaces its earlier value, as in hclog.
func (h *hcLogger) With(args ...any) hclog.Logger {
	implied := append([]any(nil), h.implied...)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			implied = append(implied, hclog.MissingKey, args[i])
			break
		}
		replaced := false
		for j := 0; j+1 < len(implied); j += 2 {
			if k, ok := args[i].(string); ok && implied[j] == k {
				implied[j+1], replaced = args[i+1], true
				break
			}
		}
		if !replaced {
			implied = append(implied, args[i], args[i+1])
		}
	}
	return h.derive(h.name, implied)
}

// Name returns the logger's name.
func (h *hcLogger) Name() string { return h.name }

// Named returns a logger whose name is this one's with "." and name
// appended.
func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.derive(name, h.implied)
}

// ResetNamed returns a logger named name.
func (h *hcLogger) ResetNamed(name string) hclog.Logger { return h.derive(name, h.implied) }

func (h *hcLogger) derive(name string, implied []any) *hcLogger {
	l := h.base
	if name != h.root && name != "" {
		l = l.With("logger", name)
	}
	if len(implied) > 0 {
		as := attrs(implied)
		args := make([]any, len(as))
		for i, a := range as {
			args[i] = a
		}
		l = l.With(args...)
	}
	return &hcLogger{l: l, base: h.base, root: h.root, name: name, implied: implied, min: h.min}
}

// SetLevel sets the lowest level this logger and every logger derived from
// the same root emit; the slog handler's own level still applies.
// hclog.NoLevel leaves it to the handler alone.
func (h *hcLogger) SetLevel(level hclog.Level) { h.min.Store(int32(level)) }

// GetLevel returns the lowest level that is emitted.
func (h *hcLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger returns a standard library logger that writes through
// this one (see StandardWriter).
func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs every line written to it: at
// opts.ForceLevel when set; else, with opts.InferLevels, at the level of
// a leading "[ERROR]", "[WARN]", "[INFO]", "[DEBUG]" or "[TRACE]" (which
// is removed; with InferLevelsWithTimestamp it may follow a timestamp,
// which is removed too); else at INFO.
func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return &stdWriter{h: h, force: opts.ForceLevel, infer: opts.InferLevels || opts.InferLevelsWithTimestamp,
		afterTimestamp: opts.InferLevelsWithTimestamp}
}

type stdWriter struct {
	h              *hcLogger
	force          hclog.Level
	infer          bool
	afterTimestamp bool
}

var levelPrefixes = []struct {
	prefix string
	level  hclog.Level
}{{"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error}, {"[WARN]", hclog.Warn}, {"[INFO]", hclog.Info},
	{"[DEBUG]", hclog.Debug}, {"[TRACE]", hclog.Trace}}

func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		level := hclog.Info
		switch {
		case w.force != hclog.NoLevel:
			level = w.force
		case w.infer:
			for _, lp := range levelPrefixes {
				if i := strings.Index(s, lp.prefix); i == 0 || i > 0 && w.afterTimestamp {
					level, s = lp.level, strings.TrimSpace(s[i+len(lp.prefix):])
					break
				}
			}
		}
		if s != "" {
			w.h.writeLine(level, s)
		}
	}
	return len(p), nil
}

// writeLine logs one line from the standard writer (no raft call site to
// point at).
func (h *hcLogger) writeLine(level hclog.Level, msg string) {
	if !h.enabled(level) {
		return
	}
	r := slog.NewRecord(time.Now(), slogLevel(level), msg, 0)
	_ = h.l.Handler().Handle(context.Background(), r)
}
