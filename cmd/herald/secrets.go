package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "manage the encryption of secrets at rest (admin)",
		Long: `Signing secrets are sealed (XChaCha20-Poly1305) under a data key that the
cluster's master key wraps; only ciphertext reaches the event log, the Raft
log, snapshots and backups. The master key is each node's DATA/secrets.key
(or --secrets-key-file); see docs/security.md.`,
	}
	cmd.AddCommand(newSecretsRotateCmd())
	return cmd
}

func newSecretsRotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "make a new data key and re-seal every secret under it",
		Long: `Add a data key (wrapped under the master key) through Raft and re-seal every
subscription's signing secrets under it, one Raft entry per subscription;
deliveries go on meanwhile. The master key does not change.`,
		Example: `herald secrets rotate-key
# data key 2 (master key 3f2a…): 12 subscriptions re-sealed`,
		Args: nargs(0, 0, ""),
	}
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := k.client()
		if err != nil {
			return err
		}
		res, err := c.RotateSecretsKey(cmd.Context())
		if err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), res)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "data key %d (master key %s): %d subscriptions re-sealed\n", res.KeyID, res.MasterKey, res.Resealed)
		return err
	}
	return cmd
}
