package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// groupOrder is the order of the headings in herald -h.
var groupOrder = []string{"Run a node", "Events and stores", "Webhooks", "Operations", "Other"}

// helpFunc prints a command's help: what it does, its usage, its
// subcommands (every command, for herald itself), its own flags, then the
// connection flags, each with its variable.
func helpFunc(c *cobra.Command, _ []string) {
	w := c.OutOrStdout()
	desc := c.Long
	if desc == "" {
		desc = c.Short
	}
	fmt.Fprintln(w, strings.TrimSpace(desc))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	for _, u := range usageLines(c) {
		fmt.Fprintln(w, "  "+u)
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(w, "\nAliases: %s\n", strings.Join(c.Aliases, ", "))
	}
	if !c.HasParent() {
		writeCommandList(w, c)
	} else if c.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		for _, s := range leaves(c) {
			fmt.Fprintf(tw, "  %s\t%s\n", s.CommandPath(), s.Short)
		}
		tw.Flush()
	}
	var own, conn []*pflag.Flag
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if _, ok := f.Annotations[annConn]; ok {
			conn = append(conn, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		writeFlags(w, own)
	}
	if len(conn) > 0 {
		fmt.Fprintln(w, "\nConnection flags:")
		writeFlags(w, conn)
	}
	if c.Example != "" {
		fmt.Fprintln(w, "\nExamples:")
		for _, l := range strings.Split(strings.Trim(c.Example, "\n"), "\n") {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if !c.HasParent() {
		fmt.Fprintln(w, "\nEvery flag also reads an environment variable, shown as [$NAME]; a flag on the command line wins.")
		fmt.Fprintln(w, "Run 'herald help COMMAND' or 'herald COMMAND -h' for a command's flags. Full reference: docs/cli.md.")
	} else if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", c.CommandPath())
	}
}

// usageLines are the command's usage forms, with its full path.
func usageLines(c *cobra.Command) []string {
	if isGroup(c) && c.HasParent() {
		return []string{c.CommandPath() + " COMMAND"}
	}
	var forms []string
	if u := c.Annotations[annUsage]; u != "" {
		forms = strings.Split(u, "\n")
	} else {
		_, rest, _ := strings.Cut(c.Use, " ")
		forms = []string{rest}
	}
	var out []string
	for _, f := range forms {
		line := strings.TrimSpace(c.CommandPath() + " " + f)
		if c.HasAvailableFlags() && c.HasParent() && !strings.Contains(line, "[flags]") {
			line += " [flags]"
		}
		out = append(out, line)
	}
	return out
}

// isGroup: a command that only holds others (herald subs), unlike one
// that has subcommands and does something itself (herald stores [STORE]).
func isGroup(c *cobra.Command) bool {
	return c.HasAvailableSubCommands() && c.Annotations[annLeaf] == ""
}

func listable(c *cobra.Command) bool { return c.IsAvailableCommand() || c.Name() == "help" }

// listed is c (unless it is a group) and every command under it, depth
// first.
func listed(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	if !isGroup(c) {
		out = append(out, c)
	}
	for _, s := range c.Commands() {
		if listable(s) {
			out = append(out, listed(s)...)
		}
	}
	return out
}

func leaves(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if listable(s) {
			out = append(out, listed(s)...)
		}
	}
	return out
}

func writeCommandList(w io.Writer, root *cobra.Command) {
	byGroup := map[string][]*cobra.Command{}
	for _, s := range root.Commands() {
		if !listable(s) {
			continue
		}
		g := s.Annotations[annGroup]
		if g == "" {
			g = "Other"
		}
		byGroup[g] = append(byGroup[g], listed(s)...)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	for _, g := range groupOrder {
		if len(byGroup[g]) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s:\n", g)
		for _, s := range byGroup[g] {
			path := strings.TrimPrefix(s.CommandPath(), root.Name()+" ")
			fmt.Fprintf(tw, "  %s\t%s\n", path, s.Short)
		}
	}
	tw.Flush()
}

// writeFlags prints flags with their value name, usage, default and
// variable.
func writeFlags(w io.Writer, flags []*pflag.Flag) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	for _, f := range flags {
		name := "    --" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", --" + f.Name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() == "bool" {
			varname = ""
		}
		if varname != "" {
			name += " " + varname
		}
		if f.Name == "help" {
			usage = "show this help"
		}
		if f.Name == "version" && f.Annotations[annEnv] == nil {
			usage = "print the version"
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" && d != "[]" {
			usage += fmt.Sprintf(" (default %s)", d)
		}
		if env := f.Annotations[annEnv]; len(env) > 0 {
			usage += " [$" + env[0] + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	}
	tw.Flush()
}
