package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// envFlags gives every flag of a FlagSet an environment variable
// (HERALD_ + upper-cased name, dashes as underscores) used as its default;
// a flag on the command line wins.
func envFlags(fs *flag.FlagSet) error {
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		env := "HERALD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		f.Usage += fmt.Sprintf(" [$%s]", env)
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("$%s: %v", env, err))
			}
			f.DefValue = v
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if level == "off" {
		lvl = slog.LevelError + 100
	} else if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
