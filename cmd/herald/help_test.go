package main

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// everyCommand is the command tree; herald -h must list each.
var everyCommand = []string{
	"serve", "dev", "publish", "events", "stores", "stores set-retention", "types",
	"subs list", "subs get", "subs create", "subs update", "subs pause", "subs enable", "subs rotate", "subs test", "subs delete",
	"deliveries list", "deliveries get", "deliveries redeliver", "deliveries replay",
	"cluster status", "cluster join", "cluster remove", "cluster transfer",
	"secrets rotate-key", "secrets create-key", "health", "openapi", "backup", "restore", "recover", "convert-log-store", "compact", "bench", "version",
	"completion bash", "completion zsh", "completion fish", "help",
}

// TestHelpListsEveryCommand: herald -h, --help and help print the same
// list, with every command of the tree, and exit 0.
func TestHelpListsEveryCommand(t *testing.T) {
	var first string
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := herald(t, opts{}, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("herald %v:\n%s", args, r)
		}
		for _, c := range everyCommand {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c) + `\s{2,}\S`).MatchString(r.stdout) {
				t.Errorf("herald %v does not list %q:\n%s", args, c, r.stdout)
			}
		}
		if first == "" {
			first = r.stdout
		} else if r.stdout != first {
			t.Errorf("herald %v differs from herald -h", args)
		}
	}
	// A group lists its own commands.
	r := herald(t, opts{}, "subscriptions", "-h")
	for _, c := range []string{"list", "get", "create", "update", "pause", "enable", "rotate", "test", "delete"} {
		if !strings.Contains(r.stdout, "herald subs "+c+" ") {
			t.Errorf("herald subscriptions -h does not list subs %s:\n%s", c, r.stdout)
		}
	}
}

// flagNames are the --names a help text offers.
func flagNames(help string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z-]+)`).FindAllStringSubmatch(help, -1) {
		out[m[1]] = true
	}
	return out
}

// TestCommandHelpShowsOnlyItsFlags: herald help CMD and herald CMD -h
// show the same text, with the command's own flags (each with its
// variable) and no other command's.
func TestCommandHelpShowsOnlyItsFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd      []string
		want     []string // flag=VARIABLE
		mustNot  []string
		connFlag bool
	}{
		{[]string{"serve"}, []string{"data=HERALD_DATA", "http=HERALD_HTTP", "raft-tls-cert=HERALD_RAFT_TLS_CERT", "log-level=HERALD_LOG_LEVEL", "join=HERALD_JOIN"},
			[]string{"addr", "output", "nodes", "url", "out"}, false},
		{[]string{"cluster", "status"}, []string{"consistency=HERALD_CLUSTER_STATUS_CONSISTENCY", "addr=HERALD_ADDR", "output=HERALD_OUTPUT"},
			[]string{"id", "raft-addr", "http-addr", "non-voter", "to"}, true},
		{[]string{"cluster", "join"}, []string{"id=HERALD_CLUSTER_JOIN_ID", "raft-addr=HERALD_CLUSTER_JOIN_RAFT_ADDR", "non-voter=HERALD_CLUSTER_JOIN_NON_VOTER"},
			[]string{"to", "consistency"}, true},
		{[]string{"dev"}, []string{"nodes=HERALD_DEV_NODES", "data=HERALD_DEV_DATA", "port=HERALD_DEV_PORT"}, []string{"addr", "http"}, false},
		{[]string{"bench"}, []string{"duration=HERALD_BENCH_DURATION", "scenario=HERALD_BENCH_SCENARIO"}, []string{"addr"}, false},
		{[]string{"publish"}, []string{"data=HERALD_PUBLISH_DATA", "batch=HERALD_PUBLISH_BATCH", "key=HERALD_PUBLISH_KEY", "version=HERALD_PUBLISH_VERSION", "api-key=HERALD_API_KEY", "ca=HERALD_CA"},
			[]string{"url", "follow"}, true},
		{[]string{"subs", "create"}, []string{"url=HERALD_SUBS_CREATE_URL", "secret=HERALD_SUBS_CREATE_SECRET", "from-seq=HERALD_SUBS_CREATE_FROM_SEQ"}, []string{"grace"}, true},
		{[]string{"subs", "update"}, []string{"url=HERALD_SUBS_UPDATE_URL", "disabled=HERALD_SUBS_UPDATE_DISABLED"}, []string{"secret", "from-seq"}, true},
		{[]string{"restore"}, []string{"data=HERALD_DATA", "from=HERALD_FROM"}, []string{"addr", "output"}, false},
		{[]string{"recover"}, []string{"data=HERALD_DATA", "peers=HERALD_PEERS"}, []string{"addr"}, false},
		{[]string{"compact"}, []string{"data=HERALD_DATA"}, []string{"addr", "from"}, false},
		{[]string{"convert-log-store"}, []string{"data=HERALD_DATA", "to=HERALD_TO"}, []string{"addr", "from", "peers"}, false},
		{[]string{"backup"}, []string{"out=HERALD_BACKUP_OUT", "addr=HERALD_ADDR"}, []string{"data"}, true},
	} {
		viaHelp := herald(t, opts{}, append([]string{"help"}, tc.cmd...)...)
		viaFlag := herald(t, opts{}, append(tc.cmd, "-h")...)
		if viaHelp.code != 0 || viaFlag.code != 0 || viaHelp.stdout != viaFlag.stdout {
			t.Fatalf("%v: help and -h differ:\n%s\n%s", tc.cmd, viaHelp, viaFlag)
		}
		help := viaFlag.stdout
		if !strings.Contains(help, "herald "+strings.Join(tc.cmd, " ")) {
			t.Errorf("%v: no usage line:\n%s", tc.cmd, help)
		}
		names := flagNames(help)
		for _, w := range tc.want {
			name, env, _ := strings.Cut(w, "=")
			if !names[name] || !regexp.MustCompile(`--`+regexp.QuoteMeta(name)+` .*\[\$`+env+`\]`).MatchString(help) {
				t.Errorf("%v: no --%s with [$%s]:\n%s", tc.cmd, name, env, help)
			}
		}
		for _, n := range tc.mustNot {
			if names[n] {
				t.Errorf("%v offers --%s, another command's flag:\n%s", tc.cmd, n, help)
			}
		}
		if strings.Contains(help, "Connection flags:") != tc.connFlag {
			t.Errorf("%v: connection flags shown = %v, want %v", tc.cmd, !tc.connFlag, tc.connFlag)
		}
	}
	// serve's help offers exactly serve's flags (the contract with
	// scripts and systemtest/).
	want := []string{"data", "http", "http-advertise", "raft", "raft-advertise", "node-id", "bootstrap", "join", "non-voter", "join-token", "no-auth", "cors-origins", "delivery-allow", "secrets-key-file", "max-subscriptions-per-store", "max-waiting-reads", "access-log", "metrics-addr", "metrics-public",
		"raft-tls-cert", "raft-tls-key", "raft-tls-ca", "tls-cert", "tls-key", "tls-ca", "raft-log-store", "snapshot-bytes", "trailing-bytes", "heartbeat-timeout", "election-timeout",
		"leader-lease-timeout", "retention-max-age", "retention-max-events", "retention-interval", "log-level", "log-format", "help"}
	got := flagNames(herald(t, opts{}, "serve", "-h").stdout)
	if len(got) != len(want) {
		t.Errorf("serve offers %d flags, want %d: %v", len(got), len(want), got)
	}
	for _, n := range want {
		if !got[n] {
			t.Errorf("serve -h lacks --%s", n)
		}
	}
}

// TestVersion: herald --version and herald version print the version set
// with -ldflags, the VCS fields (a revision, or "unknown"), the Go
// version and the platform.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"-v"}} {
		r := herald(t, opts{}, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%v:\n%s", args, r)
		}
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if len(lines) != 6 || lines[0] != "herald test-version" {
			t.Fatalf("%v:\n%s", args, r.stdout)
		}
		rev := `unknown`
		if gitHead != "" {
			rev = regexp.QuoteMeta(gitHead) // built from a git checkout: the binary says which commit
		}
		for i, re := range []string{
			`^revision: +` + rev + `$`,
			`^modified: +(true|false|unknown)$`,
			`^commit time: +(\d{4}-\d\d-\d\dT\S+|unknown)$`,
			`^go: +` + regexp.QuoteMeta(runtime.Version()) + `$`,
			`^platform: +` + runtime.GOOS + "/" + runtime.GOARCH + `$`,
		} {
			if !regexp.MustCompile(re).MatchString(lines[i+1]) {
				t.Errorf("%v: line %q does not match %s", args, lines[i+1], re)
			}
		}
	}
}

// TestCompletion: cobra's completion scripts.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_herald", "zsh": "#compdef herald", "fish": "complete -c herald"} {
		r := herald(t, opts{}, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: exit %d, no %q in %d bytes", shell, r.code, want, len(r.stdout))
		}
	}
	wantUsage(t, herald(t, opts{}, "completion", "tcsh"), `unknown command "tcsh"`, "herald completion")
}

// TestUsageErrors: every kind of command-line mistake exits 2 with one
// error line and one pointer to the command's help, nothing on stdout,
// before any request is sent (the address is a closed port).
func TestUsageErrors(t *testing.T) {
	dead := "http://" + freeAddr(t)
	batch := t.TempDir() + "/batch.jsonl"
	writeFile(t, batch, "{\"type\":\"a\"}\n\n{\"type\":\"b\",\"colour\":\"red\"}\n")
	for _, tc := range []struct {
		args []string
		env  []string
		want string
		cmd  string
	}{
		{[]string{"bogus"}, nil, `unknown command "bogus" for "herald"`, "herald"},
		{[]string{"pubish"}, nil, `did you mean "publish"?`, "herald"},
		{[]string{"subs", "bogus"}, nil, `unknown command "bogus" for "herald subs"`, "herald subs"},
		{[]string{"subs"}, nil, "herald subs needs a command: list, get, create", "herald subs"},
		{[]string{"help", "bogus"}, nil, `unknown help topic "bogus"`, "herald help"},
		{[]string{"--bogus"}, nil, "unknown flag: --bogus", "herald"},
		{[]string{"publish", "s", "t", "--bogus"}, nil, "unknown flag: --bogus", "herald publish"},
		{[]string{"cluster", "status", "--non-voter"}, nil, "unknown flag: --non-voter", "herald cluster status"},
		{[]string{"events", "s", "--limit", "ten"}, nil, `invalid argument "ten" for "--limit" flag`, "herald events"},
		{[]string{"events", "s", "-o", "xml"}, nil, "must be table or json", "herald events"},
		{[]string{"events", "s", "--addr", "ftp://x"}, nil, `invalid argument "ftp://x" for "--addr" flag`, "herald events"},
		{[]string{"events", "s", "--after"}, nil, "flag needs an argument: --after", "herald events"},
		{[]string{"events"}, nil, "wants STORE [EVENT_ID], got 0 arguments", "herald events"},
		{[]string{"events", "s", "e1", "--follow"}, nil, "--follow does not go with an EVENT_ID", "herald events"},
		{[]string{"subs", "get", "s"}, nil, "wants STORE SUB, got 1 argument", "herald subs get"},
		{[]string{"subs", "create", "s"}, nil, "--url is required", "herald subs create"},
		{[]string{"subs", "create", "s", "--url", "http://x", "--retry", "5s,soon"}, nil, `"soon" is not a duration`, "herald subs create"},
		{[]string{"subs", "create", "s", "--url", "http://x", "--header", "novalue"}, nil, "want NAME=VALUE", "herald subs create"},
		{[]string{"subs", "update", "s", "sub_1"}, nil, "nothing to change", "herald subs update"},
		{[]string{"deliveries", "list", "s", "sub_1", "--status", "lost"}, nil, "must be succeeded, failed, pending or dead", "herald deliveries list"},
		{[]string{"deliveries", "replay", "s", "sub_1"}, nil, "give --from-seq or --since", "herald deliveries replay"},
		{[]string{"deliveries", "replay", "s", "sub_1", "--from-seq", "1", "--since", "2026-01-01T00:00:00Z"}, nil, "--from-seq and --since are exclusive", "herald deliveries replay"},
		{[]string{"deliveries", "replay", "s", "sub_1", "--since", "yesterday"}, nil, "not an RFC 3339 time", "herald deliveries replay"},
		{[]string{"deliveries", "replay", "s", "sub_1", "--from-seq", "1", "--only", "failed"}, nil, "must be dead", "herald deliveries replay"},
		{[]string{"publish", "s", "t", "--data", "{nope"}, nil, "--data: the data is not valid JSON", "herald publish"},
		{[]string{"publish", "s", "t", "--data", "-"}, nil, "stdin: the data is not valid JSON", "herald publish"},
		{[]string{"publish", "s"}, nil, "publish wants STORE TYPE, got 1 argument", "herald publish"},
		{[]string{"publish", "s", "t", "--batch", batch}, nil, "with --batch, publish wants STORE only", "herald publish"},
		{[]string{"publish", "s", "--batch", batch, "--version", "2"}, nil, "--batch and --version are exclusive", "herald publish"},
		{[]string{"publish", "s", "--batch", batch}, nil, `batch.jsonl:3: unknown field "colour"`, "herald publish"},
		{[]string{"publish", "s", "--batch", batch, "--key", "k"}, nil, "--batch and --key are exclusive", "herald publish"},
		{[]string{"cluster", "join", "--id", "n4"}, nil, "--raft-addr and --http-addr are required", "herald cluster join"},
		{[]string{"cluster", "remove"}, nil, "wants NODE_ID, got 0 arguments", "herald cluster remove"},
		{[]string{"cluster", "transfer", "n1", "n2"}, nil, "wants at most one NODE_ID, got 2 arguments", "herald cluster transfer"},
		{[]string{"backup"}, nil, "--out is required", "herald backup"},
		{[]string{"restore", "--data", "x"}, nil, "--from is required", "herald restore"},
		{[]string{"dev", "--nodes", "12"}, nil, "--nodes must be 1-9", "herald dev"},
		{[]string{"serve", "extra"}, nil, `takes no arguments, got "extra"`, "herald serve"},
		{[]string{"serve", "--bootstrap", "--join", "127.0.0.1:1"}, nil, "--bootstrap and --join are exclusive", "herald serve"},
		{[]string{"serve", "--log-level", "loud"}, nil, "--log-level must be", "herald serve"},
		{[]string{"bench", "--subs", "0"}, nil, `--subs: "0" is not a positive number`, "herald bench"},
		// Variables: a bad value names the variable.
		{[]string{"dev"}, []string{"HERALD_DEV_NODES=three"}, `$HERALD_DEV_NODES: invalid value "three"`, "herald dev"},
		{[]string{"dev"}, []string{"HERALD_DEV_NODES=0"}, `$HERALD_DEV_NODES must be 1-9`, "herald dev"},
		{[]string{"stores"}, []string{"HERALD_OUTPUT=yaml"}, `$HERALD_OUTPUT: invalid value "yaml": must be table or json`, "herald stores"},
		{[]string{"stores"}, []string{"HERALD_REQUEST_TIMEOUT=soon"}, `$HERALD_REQUEST_TIMEOUT: invalid value "soon"`, "herald stores"},
		{[]string{"serve"}, []string{"HERALD_HEARTBEAT_TIMEOUT=fast"}, `$HERALD_HEARTBEAT_TIMEOUT: invalid value "fast"`, "herald serve"},
		{[]string{"events", "s"}, []string{"HERALD_EVENTS_FOLLOW=maybe"}, `$HERALD_EVENTS_FOLLOW: invalid value "maybe"`, "herald events"},
		{[]string{"deliveries", "replay", "s", "sub_1", "--since", "2026-01-01T00:00:00Z"}, []string{"HERALD_DELIVERIES_REPLAY_FROM_SEQ=3"},
			"$HERALD_DELIVERIES_REPLAY_FROM_SEQ and --since are exclusive", "herald deliveries replay"},
	} {
		env := append([]string{"HERALD_ADDR=" + dead}, tc.env...)
		wantUsage(t, herald(t, opts{env: env, stdin: "not json"}, tc.args...), tc.want, tc.cmd)
	}
}
