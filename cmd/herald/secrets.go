package main

import (
	"fmt"
	"os"

	"github.com/herald-io/herald/internal/secrets"

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
	cmd.AddCommand(newSecretsRotateCmd(), newSecretsCreateKeyCmd())
	return cmd
}

// newSecretsCreateKeyCmd writes a new master key file: for clusters on
// the operator's certificates, whose nodes all need the same
// --secrets-key-file (with the cluster's own CA a node makes its own).
func newSecretsCreateKeyCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "create-key --out FILE",
		Short: "write a new secrets master key file (for --secrets-key-file)",
		Long: `Write a new master key for the secrets at rest to FILE (0600), for a cluster
on the operator's certificates (--raft-tls-*): give every node a copy as
--secrets-key-file before it first starts with this version. Refuses an
existing FILE. The file is the key: keep it like the nodes' private keys.`,
		Annotations: map[string]string{annNode: "1", annUsage: "--out FILE"},
		Example: `herald secrets create-key --out secrets.key
# wrote secrets.key (master key 3f2a9c0d51e7b864)`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&out, "out", "", "the key `FILE` to write (required)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "out"); err != nil {
			return err
		}
		if _, err := os.Stat(out); err == nil {
			return fmt.Errorf("%s exists; a new key would not open what the old one sealed", out)
		}
		m, err := secrets.NewMasterKey()
		if err != nil {
			return err
		}
		if err := secrets.WriteKeyFile(out, m); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (master key %s)\n", out, m.Fingerprint())
		return err
	}
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
