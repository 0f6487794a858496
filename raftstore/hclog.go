package raftstore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger adapts raft's hclog output onto a slog.Logger: hclog writes
// formatted lines, which are re-emitted at the matching slog level.
func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	level := hclog.Info
	switch {
	case l.Enabled(context.Background(), slog.LevelDebug):
		level = hclog.Debug
	case !l.Enabled(context.Background(), slog.LevelInfo):
		level = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           level,
		Output:          &slogWriter{l: l},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

type slogWriter struct{ l *slog.Logger }

var _ io.Writer = (*slogWriter)(nil)

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := string(line)
		lvl := slog.LevelInfo
		switch {
		case strings.HasPrefix(s, "[ERROR]"):
			lvl = slog.LevelError
		case strings.HasPrefix(s, "[WARN]"):
			lvl = slog.LevelWarn
		case strings.HasPrefix(s, "[DEBUG]"), strings.HasPrefix(s, "[TRACE]"):
			lvl = slog.LevelDebug
		}
		if i := strings.Index(s, "] "); i > 0 && i < 8 {
			s = strings.TrimSpace(s[i+2:])
		}
		w.l.Log(context.Background(), lvl, s)
	}
	return len(p), nil
}
