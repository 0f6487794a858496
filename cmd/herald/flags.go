package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag and command annotations.
const (
	annEnv     = "herald_env"      // a flag's environment variable
	annConn    = "herald_conn"     // a connection flag (reads HERALD_<FLAG> on every command)
	annSecret  = "herald_secret"   // a flag whose value is never repeated in a message
	annFromEnv = "herald_from_env" // set when the flag's value came from its variable
	annNode    = "herald_node"     // a node command: its flags read HERALD_<FLAG>
	annUsage   = "herald_usage"    // a command's usage lines, when Use is not enough
	annGroup   = "herald_group"    // the heading a top-level command is listed under
	annLeaf    = "herald_leaf"     // a command with subcommands that also runs itself
)

// usageError is a mistake in the command line (or in a variable standing
// for a flag): the message is printed with a pointer to the command's
// help, and the exit status is 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// envName is the variable a flag reads: HERALD_<FLAG> for the connection
// flags and the node commands' flags, HERALD_<COMMAND PATH>_<FLAG> for
// every other command's.
func envName(c *cobra.Command, f *pflag.Flag) string {
	up := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
	if _, ok := f.Annotations[annConn]; ok || c.Annotations[annNode] != "" {
		return "HERALD_" + up(f.Name)
	}
	var path []string
	for p := c; p.HasParent(); p = p.Parent() {
		path = append([]string{up(p.Name())}, path...)
	}
	return "HERALD_" + strings.Join(path, "_") + "_" + up(f.Name)
}

// bindEnv gives every flag of every command its variable (shown in the
// help) and wraps each command's argument check so that the variables are
// read first: after the command line is parsed, before anything runs.
func bindEnv(c *cobra.Command) {
	c.Flags().SortFlags = false // the help lists flags in the order declared
	c.InitDefaultHelpFlag()
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || (f.Name == "version" && !c.HasParent()) {
			return // cobra's own
		}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[annEnv] = []string{envName(c, f)}
	})
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		if err := applyEnv(cmd); err != nil {
			return err
		}
		if args != nil {
			return args(cmd, a)
		}
		return nil
	}
	for _, sub := range c.Commands() {
		if !sub.Hidden {
			bindEnv(sub)
		}
	}
}

// applyEnv sets every flag not given on the command line from its
// variable, if set. The flag then counts as given (Changed).
func applyEnv(cmd *cobra.Command) error {
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[annEnv]
		if len(env) == 0 || f.Changed {
			return
		}
		v, ok := os.LookupEnv(env[0])
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			if _, secret := f.Annotations[annSecret]; secret {
				errs = append(errs, fmt.Sprintf("$%s: invalid value: %v", env[0], cleanErr(err)))
			} else {
				errs = append(errs, fmt.Sprintf("$%s: invalid value %q: %v", env[0], v, cleanErr(err)))
			}
			return
		}
		f.Changed = true
		f.Annotations[annFromEnv] = []string{"1"}
	})
	if len(errs) > 0 {
		return usagef("%s", strings.Join(errs, "; "))
	}
	return nil
}

// flagRef names a flag in a message: --name, or $VAR when its value came
// from the variable.
func flagRef(cmd *cobra.Command, name string) string {
	f := cmd.Flags().Lookup(name)
	if f != nil && f.Annotations[annFromEnv] != nil {
		return "$" + f.Annotations[annEnv][0]
	}
	return "--" + name
}

var strconvErr = regexp.MustCompile(`strconv\.Parse\w+: parsing "[^"]*": `)

// cleanErr shortens strconv's messages ("invalid syntax" is enough once
// the flag and value are named).
func cleanErr(err error) string {
	return strconvErr.ReplaceAllString(err.Error(), "")
}

// markSecret keeps a flag's value out of messages.
func markSecret(fs *pflag.FlagSet, name string) {
	f := fs.Lookup(name)
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[annSecret] = []string{"1"}
}

// longDashCompat rewrites -name to --name for the long flags of the
// command args select: Go's flag package, which the node commands used
// before, accepted both.
func longDashCompat(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return args
	}
	out := slices.Clone(args)
	value := false // the previous token was a flag waiting for its value
	for i, a := range out {
		if value {
			value = false
			continue
		}
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			f = c.Flags().Lookup(name)
		case len(name) == 1:
			f = c.Flags().ShorthandLookup(name)
		default:
			if f = c.Flags().Lookup(name); f == nil {
				continue // shorthands with their value (-ojson), or unknown
			}
			out[i] = "-" + a
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			value = true
		}
	}
	return out
}

// enumValue is a string flag with a fixed set of values.
type enumValue struct {
	val     string
	allowed []string
}

func newEnum(def string, allowed ...string) *enumValue {
	return &enumValue{val: def, allowed: allowed}
}

func (e *enumValue) String() string { return e.val }
func (e *enumValue) Type() string   { return strings.Join(e.allowed, "|") }
func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be %s", orList(e.allowed))
	}
	e.val = s
	return nil
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// durationText is a Go duration kept as written ("720h", not "720h0m0s"),
// checked when set.
type durationText struct{ s string }

func (d *durationText) String() string { return d.s }
func (d *durationText) Type() string   { return "duration" }
func (d *durationText) Set(s string) error {
	if _, err := time.ParseDuration(s); err != nil {
		return fmt.Errorf("not a duration (use 500ms, 30s, 5m, 24h)")
	}
	d.s = s
	return nil
}

// durationList is a comma-separated list of Go durations, kept as written.
type durationList struct {
	list []string
	set  bool
}

func (d *durationList) String() string { return strings.Join(d.list, ",") }
func (d *durationList) Type() string   { return "durations" }
func (d *durationList) Set(s string) error {
	if !d.set {
		d.list, d.set = nil, true
	}
	for _, p := range splitList(s) {
		if _, err := time.ParseDuration(p); err != nil {
			return fmt.Errorf("%q is not a duration (use 500ms, 30s, 5m, 24h)", p)
		}
		d.list = append(d.list, p)
	}
	return nil
}

// headerList collects K=V pairs; an empty value adds nothing (so --header
// "" on update clears the headers).
type headerList struct{ m map[string]string }

func (h *headerList) String() string {
	var out []string
	for k, v := range h.m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}
func (h *headerList) Type() string { return "K=V" }
func (h *headerList) Set(s string) error {
	if h.m == nil {
		h.m = map[string]string{}
	}
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return errors.New("want NAME=VALUE")
	}
	h.m[strings.TrimSpace(k)] = v
	return nil
}

// timeValue is an RFC 3339 time.
type timeValue struct{ t time.Time }

func (v *timeValue) String() string {
	if v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}
func (v *timeValue) Type() string { return "time" }
func (v *timeValue) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return errors.New("not an RFC 3339 time (2026-11-20T00:00:00Z)")
	}
	v.t = t
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if level == "off" {
		lvl = slog.LevelError + 100
	} else if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level must be debug, info, warn, error or off, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format must be text or json, not %q", format)
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

// nargs checks a command's positional arguments: between min and max
// (max < 0: any number), named in the message.
func nargs(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && (max < 0 || len(args) <= max) {
			return nil
		}
		if names == "" {
			return usagef("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
		}
		return usagef("%s wants %s, got %d argument%s", cmd.CommandPath(), names, len(args), plural(len(args)))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// exclusive refuses more than one of the flags given.
func exclusive(cmd *cobra.Command, names ...string) error {
	var given []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			given = append(given, flagRef(cmd, n))
		}
	}
	if len(given) > 1 {
		return usagef("%s are exclusive", strings.Join(given, " and "))
	}
	return nil
}

// required refuses a missing flag.
func required(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usagef("%s is required", missing[0])
	}
	return usagef("%s are required", andList(missing))
}

// byteSize is a size in bytes, written as a whole number with an optional
// binary unit (B, KiB, MiB, GiB, TiB); it is shown as written.
type byteSize struct {
	s string
	n uint64
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

func newByteSize(def string) *byteSize {
	b := &byteSize{}
	if err := b.Set(def); err != nil {
		panic(err)
	}
	return b
}

func (b *byteSize) String() string { return b.s }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || n > (1<<63)>>shift {
		return fmt.Errorf("not a size (use a whole number of bytes above 0, or 64MiB, 1GiB)")
	}
	b.s, b.n = s, n<<shift
	return nil
}
