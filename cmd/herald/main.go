// Command herald is Herald's single binary: the server (serve), a
// three-node cluster in one process for trying things out (dev), the
// benchmark (bench) and version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// userAgent is the User-Agent of every webhook this binary sends.
func userAgent() string { return "Herald/" + Version }

const usage = `Herald: an event store with built-in webhook delivery.

Usage:
  herald [serve flags]          same as "herald serve"
  herald serve [flags]          run a node (single node in ./herald-data by default)
  herald dev [--nodes 3]        run a loopback cluster in one process
  herald bench publish [flags]  measure publish throughput and latency
  herald cluster status|join|remove|transfer [--addr HTTPADDR]
                                inspect or change cluster membership
  herald backup --addr HTTPADDR --out FILE   copy a node's event log
  herald restore --data DIR --from FILE      new single-node data dir from a backup
  herald recover --data DIR --peers FILE     after losing quorum: set a stopped node's members
  herald compact --data DIR                  shrink a stopped node's event log file (after retention)
  herald version                print the version

Run "herald <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, args, stdout, stderr)
	case "dev":
		err = runDev(ctx, args, stdout, stderr)
	case "bench":
		err = runBench(ctx, args, stdout, stderr)
	case "cluster":
		err = runCluster(ctx, args, stdout, stderr)
	case "backup":
		err = runBackup(ctx, args, stdout, stderr)
	case "restore":
		err = runRestore(ctx, args, stdout, stderr)
	case "recover":
		err = runRecover(ctx, args, stdout, stderr)
	case "compact":
		err = runCompact(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "herald %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "herald %s: %v\n", cmd, err)
		return 1
	}
	return 0
}
