// Command herald is Herald's single binary: the server (serve), a local
// cluster in one process (dev), a client for the whole HTTP API (publish,
// events, stores, types, subs, deliveries, cluster, backup), the offline node
// tools (restore, recover, convert-log-store, compact) and the benchmark
// (bench).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// userAgent is the User-Agent of every webhook this binary sends.
func userAgent() string { return "Herald/" + Version }

// cliUserAgent is the User-Agent of the CLI's API requests.
func cliUserAgent() string { return "herald-cli/" + Version }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status: 0, 1 for a
// failure, 2 for a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "herald: no command given, serving a single node (herald help lists the commands)")
		args = []string{"serve"}
	}
	root := newRoot()
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(longDashCompat(root, append([]string{}, args...)))
	ran := false // a command's own code started: its errors are failures unless marked
	markRun(root, &ran)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd == nil {
		cmd = root
	}
	if !ran || isUsage(err) {
		fmt.Fprintf(stderr, "error: %s\n", oneLine(err.Error()))
		fmt.Fprintf(stderr, "Run '%s -h' for usage.\n", cmd.CommandPath())
		return 2
	}
	fmt.Fprintf(stderr, "error: %s\n", err)
	return 1
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// markRun wraps every command's RunE to record that it started.
func markRun(c *cobra.Command, ran *bool) {
	if fn := c.RunE; fn != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return fn(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

func init() {
	cobra.EnableCommandSorting = false // the help lists commands in the order added
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Herald: an event store with built-in webhook delivery",
		Long: `Herald: an event store with built-in webhook delivery.

With no command, herald serves a single node like "herald serve".`,
		Annotations:   map[string]string{annUsage: "            (no command: the same as herald serve)\nCOMMAND [flags]"},
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Arguments that are no command: cobra would list suggestions on
		// several lines; one line is enough.
		Args: func(cmd *cobra.Command, args []string) error {
			return unknownCommand(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cleanErr(err)}
	})
	root.SetHelpFunc(helpFunc)
	root.SetUsageFunc(func(c *cobra.Command) error { helpFunc(c, nil); return nil })

	addGroup(root, "Run a node", newServeCmd(), newDevCmd())
	addGroup(root, "Events and stores", newPublishCmd(), newEventsCmd(), newStoresCmd(), newTypesCmd())
	addGroup(root, "Webhooks", newSubsCmd(), newDeliveriesCmd())
	addGroup(root, "Operations", newKeysCmd(), newSecretsCmd(), newClusterCmd(), newHealthCmd(), newOpenAPICmd(), newBackupCmd(), newRestoreCmd(), newRecoverCmd(), newConvertLogStoreCmd(), newCompactCmd(), newBenchCmd())
	addGroup(root, "Other", newVersionCmd())
	root.SetHelpCommand(newHelpCmd(root))
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Annotations = map[string]string{annGroup: "Other"}
			c.Short = "print a shell completion script"
			for _, sh := range c.Commands() {
				sh.Short = "print the completion script for " + sh.Name()
			}
		}
	}
	groups(root)
	// The version flag is added at execution; add it now so the help
	// lists it and the variables skip it.
	root.InitDefaultVersionFlag()
	bindEnv(root)
	root.SetVersionTemplate(versionText())
	return root
}

func addGroup(root *cobra.Command, group string, cmds ...*cobra.Command) {
	for _, c := range cmds {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[annGroup] = group
		root.AddCommand(c)
	}
}

// groups gives every command that only holds subcommands a check of its
// arguments: none is "which one?", another word is an unknown command.
func groups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		groups(sub)
	}
	if c.HasParent() && c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) }
		c.RunE = func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) }
	}
}

func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		return usagef("%s needs a command: %s", cmd.CommandPath(), strings.Join(names, ", "))
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return &usageError{msg}
}

// versionText is what herald version and herald --version print.
func versionText() string {
	rev, modified, at := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			case "vcs.time":
				at = s.Value
			}
		}
	}
	return fmt.Sprintf("herald %s\nrevision:    %s\nmodified:    %s\ncommit time: %s\ngo:          %s\nplatform:    %s/%s\n",
		Version, rev, modified, at, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, VCS revision, commit time, Go version and platform",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), versionText())
			return err
		},
	}
}

// newHelpCmd is "herald help [COMMAND...]"; an unknown topic is a usage
// error (cobra's own prints the root's help and succeeds).
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND...]",
		Short: "show the commands, or one command's flags",
		Annotations: map[string]string{
			annGroup: "Other",
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || c == nil || len(rest) > 0 {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			c.InitDefaultHelpFlag()
			helpFunc(c, nil)
			return nil
		},
	}
}
