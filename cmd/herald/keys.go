package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/herald-io/herald/api"
	"github.com/herald-io/herald/internal/pki"
	"github.com/spf13/cobra"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "create, list and revoke API keys (admin)",
		Long: `Create, list and revoke API keys. Every command needs an admin key. A key is
shown once, when it is created; Herald keeps only its hash.`,
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysListCmd(), newKeysGetCmd(), newKeysRevokeCmd())
	return cmd
}

func newKeysCreateCmd() *cobra.Command {
	var name string
	var admin bool
	var stores, actions []string
	var expires durationText
	cmd := &cobra.Command{
		Use:   "create --name NAME (--admin | --store STORE... --action ACTION...) [--expires 720h]",
		Short: "create an API key and print it (once)",
		Long: `Create an API key. An admin key may do everything; any other key gets one
grant: the actions (publish, read, subscriptions) on the stores named
(a name, or a prefix followed by *: plant-*). The key is printed on the
last line of the output, this once.`,
		Annotations: map[string]string{annUsage: "--name NAME (--admin | --store STORE... --action ACTION...) [--expires 720h]"},
		Example: `herald keys create --name ci --store shop-1 --action publish
herald keys create --name erp --store 'plant-*' --action read --action subscriptions --expires 720h
herald keys create --name ops --admin`,
		Args: nargs(0, 0, ""),
	}
	fs := cmd.Flags()
	fs.StringVar(&name, "name", "", "what the key is for (shown in lists)")
	fs.BoolVar(&admin, "admin", false, "an admin key: keys, cluster, backup and every store")
	fs.StringSliceVar(&stores, "store", nil, "`STORE` (or prefix*) the key may act on; repeat or comma-separate")
	fs.StringSliceVar(&actions, "action", nil, "`ACTION` allowed: publish, read or subscriptions; repeat or comma-separate")
	fs.Var(&expires, "expires", "the key stops working after this `DURATION` (default never)")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "name"); err != nil {
			return err
		}
		req := api.KeyRequest{Name: name, Admin: admin}
		switch {
		case admin && (len(stores) > 0 || len(actions) > 0):
			return usagef("--admin has every right: give no --store or --action with it")
		case !admin && (len(stores) == 0 || len(actions) == 0):
			return usagef("give --admin, or --store and --action")
		case !admin:
			g := api.Grant{Stores: stores}
			for _, a := range actions {
				if !slices.Contains(api.Actions(), api.Action(a)) {
					return usagef("--action %q: want publish, read or subscriptions", a)
				}
				g.Actions = append(g.Actions, api.Action(a))
			}
			req.Grants = []api.Grant{g}
		}
		if expires.s != "" {
			d, _ := time.ParseDuration(expires.s)
			t := time.Now().Add(d)
			req.ExpiresAt = &t
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		key, err := c.CreateKey(cmd.Context(), req)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			return writeJSON(w, key)
		}
		fmt.Fprintf(w, "created key %s (%s): %s\nstore it now, it is not shown again:\n%s\n", key.ID, key.Name, rights(*key), key.Key)
		return nil
	}
	return cmd
}

func rights(k api.Key) string {
	if k.Admin {
		return "admin"
	}
	var parts []string
	for _, g := range k.Grants {
		var as []string
		for _, a := range g.Actions {
			as = append(as, string(a))
		}
		parts = append(parts, strings.Join(as, ",")+" on "+strings.Join(g.Stores, ","))
	}
	return strings.Join(parts, "; ")
}

func newKeysListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "list API keys (never the keys themselves)",
		Example: `herald keys list`,
		Args:    nargs(0, 0, ""),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		keys, err := c.Keys(cmd.Context())
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			return writeJSON(w, api.KeyList{Keys: keys})
		}
		return keyTable(w, keys...)
	}
	return cmd
}

// keyTable prints keys as a table (never the keys themselves).
func keyTable(w io.Writer, keys ...api.Key) error {
	tw := newTable(w, "ID", "NAME", "RIGHTS", "CREATED", "EXPIRES", "LAST_USED")
	for _, key := range keys {
		row(tw, key.ID, key.Name, rights(key), fmtTime(key.CreatedAt), timeOrDash(key.ExpiresAt), timeOrDash(key.LastUsedAt))
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func newKeysGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get ID",
		Short:   "show one API key",
		Example: `herald keys get key_01JD…`,
		Args:    nargs(1, 1, "ID"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		key, err := c.Key(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			return writeJSON(w, key)
		}
		return keyTable(w, *key)
	}
	return cmd
}

func newKeysRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "revoke an API key on every node",
		Example: `herald keys revoke key_01JD…`,
		Args:    nargs(1, 1, "ID"),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), map[string]string{"revoked": args[0]})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
		return nil
	}
	return cmd
}

func newClusterTokenCmd() *cobra.Command {
	var ttl durationText
	cmd := &cobra.Command{
		Use:   "token [--ttl 1h]",
		Short: "print a one-time join token for a new node (admin)",
		Long: `Print a join token: a new node started with --join ADDR --join-token TOKEN
checks the cluster's certificate against it and obtains its own. A token
works once, until it expires. The token is the last line of the output.`,
		Annotations: map[string]string{annUsage: "[--ttl 1h]"},
		Example:     `herald serve --node-id n2 --data d2 --http 127.0.0.1:8090 --raft 127.0.0.1:8091 --join 127.0.0.1:8080 --join-token "$(herald cluster token | tail -1)"`,
		Args:        nargs(0, 0, ""),
	}
	cmd.Flags().Var(&ttl, "ttl", "how long the token can be used (default 1h, at most 168h)")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		tok, err := c.CreateJoinToken(cmd.Context(), ttl.s)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if k.json() {
			return writeJSON(w, tok)
		}
		fmt.Fprintf(w, "join token for one node, valid until %s (CA %s…):\n%s\n", fmtTime(tok.ExpiresAt), tok.CAFingerprint[:16], tok.Token)
		return nil
	}
	return cmd
}

func newClusterCACmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "ca-create --out DIR",
		Short: "create a cluster CA offline (upgrading a cluster from before certificates)",
		Long: `Create a cluster CA (ca.crt and ca.key) in DIR, offline. Needed once, to
upgrade a cluster of several nodes from a release without certificates:
copy both files into each node's DATA/tls/ and restart the nodes one at a
time with this version; each issues its own certificate from the CA. New
clusters do not need it: their first node creates the CA.`,
		Annotations: map[string]string{annUsage: "--out DIR"},
		Example:     `herald cluster ca-create --out ca && for d in d1 d2 d3; do mkdir -p $d/tls && cp ca/ca.crt ca/ca.key $d/tls/; done`,
		Args:        nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write ca.crt and ca.key to")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "out"); err != nil {
			return err
		}
		for _, f := range []string{"ca.crt", "ca.key"} {
			if _, err := os.Stat(filepath.Join(out, f)); err == nil {
				return fmt.Errorf("%s exists: not overwriting a CA", filepath.Join(out, f))
			}
		}
		ca, err := pki.NewCA("herald cluster CA", time.Now(), 20*365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(out, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "ca.crt"), ca.CertPEM, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "ca.key"), ca.KeyPEM, 0o600); err != nil {
			return err
		}
		fp := ca.Fingerprint()
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s (fingerprint %x)\n", filepath.Join(out, "ca.crt"), filepath.Join(out, "ca.key"), fp[:])
		return nil
	}
	return cmd
}
