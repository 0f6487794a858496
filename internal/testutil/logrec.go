package testutil

import (
	"context"
	"log/slog"
	"sync"
)

// LogRecord is one record a LogRecorder captured. Attrs holds the
// record's attributes after those added with Logger.With, flattened:
// an attribute in group g has the key "g.key". Values are resolved.
type LogRecord struct {
	Level   slog.Level
	Message string
	Attrs   []slog.Attr
	PC      uintptr
}

// Attr returns the value of the last attribute named key.
func (r LogRecord) Attr(key string) (slog.Value, bool) {
	for i := len(r.Attrs) - 1; i >= 0; i-- {
		if r.Attrs[i].Key == key {
			return r.Attrs[i].Value, true
		}
	}
	return slog.Value{}, false
}

// Str returns the value of attribute key as text ("" when absent).
func (r LogRecord) Str(key string) string {
	v, _ := r.Attr(key)
	if v.Kind() == slog.KindAny && v.Any() == nil {
		return ""
	}
	return v.String()
}

// LogRecorder is a slog.Handler that keeps every record at or above its
// level, for tests that assert on what is logged. Loggers derived with
// With and WithGroup share the recorder's records.
type LogRecorder struct {
	level  slog.Level
	mu     *sync.Mutex
	recs   *[]LogRecord
	attrs  []slog.Attr // flattened, from WithAttrs
	prefix string      // open groups, "g1.g2."
}

// NewLogRecorder returns a recorder that keeps records at level and above.
func NewLogRecorder(level slog.Level) *LogRecorder {
	return &LogRecorder{level: level, mu: &sync.Mutex{}, recs: &[]LogRecord{}}
}

// Logger returns a logger that writes to r.
func (r *LogRecorder) Logger() *slog.Logger { return slog.New(r) }

// Records returns a copy of what was recorded so far, in order.
func (r *LogRecorder) Records() []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogRecord(nil), *r.recs...)
}

// Find returns the records with message msg.
func (r *LogRecorder) Find(msg string) []LogRecord {
	var out []LogRecord
	for _, rec := range r.Records() {
		if rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Enabled implements slog.Handler.
func (r *LogRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

// Handle implements slog.Handler.
func (r *LogRecorder) Handle(_ context.Context, rec slog.Record) error {
	out := LogRecord{Level: rec.Level, Message: rec.Message, PC: rec.PC, Attrs: append([]slog.Attr(nil), r.attrs...)}
	rec.Attrs(func(a slog.Attr) bool {
		out.Attrs = flatten(out.Attrs, r.prefix, a)
		return true
	})
	r.mu.Lock()
	*r.recs = append(*r.recs, out)
	r.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler.
func (r *LogRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append([]slog.Attr(nil), r.attrs...)
	for _, a := range as {
		c.attrs = flatten(c.attrs, r.prefix, a)
	}
	return &c
}

// WithGroup implements slog.Handler.
func (r *LogRecorder) WithGroup(name string) slog.Handler {
	if name == "" {
		return r
	}
	c := *r
	c.prefix = r.prefix + name + "."
	return &c
}

func flatten(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			dst = flatten(dst, p, g)
		}
		return dst
	}
	if a.Key == "" {
		return dst
	}
	return append(dst, slog.Attr{Key: prefix + a.Key, Value: v})
}
