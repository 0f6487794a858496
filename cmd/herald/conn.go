package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// conn holds the connection flags of a command that talks to a node.
type conn struct {
	addrs   addrList
	ca      string
	apiKey  string
	output  *enumValue
	timeout time.Duration
}

// addConn adds the connection flags to cmd: --addr, --ca, --api-key,
// -o/--output and --request-timeout, which read HERALD_ADDR, HERALD_CA,
// HERALD_API_KEY, HERALD_OUTPUT and HERALD_REQUEST_TIMEOUT on every
// command.
func addConn(cmd *cobra.Command) *conn {
	k := &conn{addrs: addrList{list: []string{api.DefaultAddress}}, output: newEnum("table", "table", "json")}
	fs := cmd.Flags()
	fs.Var(&k.addrs, "addr", "`URL` of any node: host:port or http(s)://host:port; a comma-separated list to try in turn")
	fs.StringVar(&k.ca, "ca", "", "CA certificate `FILE` (PEM) to trust for https:// addresses with a private CA")
	fs.StringVar(&k.apiKey, "api-key", "", "API `KEY`, sent as a bearer token (default: ./herald-data/admin.key when --addr is the default)")
	fs.VarP(k.output, "output", "o", "output format")
	fs.DurationVar(&k.timeout, "request-timeout", 30*time.Second, "bound on each request (long polls add their wait)")
	markSecret(fs, "api-key")
	for _, n := range []string{"addr", "ca", "api-key", "output", "request-timeout"} {
		f := fs.Lookup(n)
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[annConn] = []string{"1"}
	}
	return k
}

func (k *conn) json() bool { return k.output.val == "json" }

// defaultKeyFile is where a node started with no flags keeps its first
// admin key; the CLI reads it when it talks to the default address and
// no key was given.
var defaultKeyFile = filepath.Join("herald-data", "admin.key")

// key is the API key to send: --api-key, then $HERALD_API_KEY (both the
// flag), then ./herald-data/admin.key when the address is the default
// local one.
func (k *conn) key() string {
	if k.apiKey != "" {
		return k.apiKey
	}
	if len(k.addrs.list) != 1 || k.addrs.list[0] != api.DefaultAddress {
		return ""
	}
	b, err := os.ReadFile(defaultKeyFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (k *conn) client() (*api.Client, error) {
	return api.NewClient(api.Config{
		Addresses: k.addrs.list,
		CAFile:    k.ca,
		APIKey:    k.key(),
		Timeout:   k.timeout,
		UserAgent: cliUserAgent(),
	})
}

// addrList is a comma-separated list of node addresses, checked when set.
type addrList struct {
	list []string
}

func (a *addrList) String() string {
	s := ""
	for i, x := range a.list {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}
func (a *addrList) Type() string { return "URL" }
func (a *addrList) Set(s string) error {
	list := splitList(s)
	if len(list) == 0 {
		return errEmptyAddr
	}
	if _, err := api.NewClient(api.Config{Addresses: list}); err != nil {
		return err
	}
	a.list = list
	return nil
}

var errEmptyAddr = usagef("no address given")

// consistencyFlag adds --consistency to a read command.
func consistencyFlag(fs *pflag.FlagSet) *enumValue {
	v := newEnum("", "local", "leader", "linearizable")
	fs.Var(v, "consistency", "read `LEVEL`: local, leader (the server's default) or linearizable")
	return v
}

func queryOpts(v *enumValue) *api.QueryOptions {
	if v.val == "" {
		return nil
	}
	return &api.QueryOptions{Consistency: api.Consistency(v.val)}
}
