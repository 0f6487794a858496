package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/herald-io/herald/internal/secrets"
	hlog "github.com/herald-io/herald/log"
	"github.com/herald-io/herald/node"
	"github.com/spf13/cobra"
)

func newBackupCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "copy a node's event log into FILE (fetch, fsync, check, rename)",
		Long: `Copy the event log of the node at --addr (any member: as fresh as its applied
index) into FILE: the copy goes to a temporary file beside FILE, is fsynced
and passes bbolt's consistency check before it is renamed into place, so
FILE is either a complete, consistent event log or untouched.`,
		Annotations: map[string]string{annUsage: "--out FILE"},
		Example: `herald backup --addr 127.0.0.1:8080 --out herald-backup.db
# wrote herald-backup.db (1048576 bytes)`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&out, "out", "", "the `FILE` to write (required)")
	k := addConn(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "out"); err != nil {
			return err
		}
		c, err := k.client()
		if err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		n, err := c.Backup(cmd.Context(), tmp)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := hlog.CheckFile(tmp.Name()); err != nil {
			return fmt.Errorf("backup failed its consistency check: %w", err)
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return err
		}
		if k.json() {
			return writeJSON(cmd.OutOrStdout(), map[string]any{"out": out, "bytes": n})
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes)\n"+
			"its signing secrets are sealed: keep the cluster's secrets key (a node's DATA/%s) apart from it; herald restore --secrets-key-file needs it\n",
			out, n, node.SecretsKeyFile)
		return err
	}
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var data, from, keyFile string
	cmd := &cobra.Command{
		Use:   "restore --data DIR --from FILE",
		Short: "make DIR a new single-node data dir from a backup",
		Long: `Make DIR the data directory of a new single-node cluster whose event log is
the backup (start it with herald serve --data DIR). Refuses a directory that
already holds a node; checks the file; resets the applied Raft index and
drops the old cluster's member addresses. A backup whose signing secrets
are sealed needs the cluster's secrets key (--secrets-key-file: a node's
DATA/secrets.key, or the operator's file); it is checked against the
backup's data keys and copied into DIR.`,
		Annotations: map[string]string{annNode: "1", annUsage: "--data DIR --from FILE"},
		Example: `herald restore --data ./restored --from herald-backup.db --secrets-key-file n1/secrets.key
# restored herald-backup.db into ./restored; start it with: herald serve --data ./restored`,
		Args: nargs(0, 0, ""),
	}
	cmd.Flags().StringVar(&data, "data", "", "new data `DIR` (must not hold a node yet)")
	cmd.Flags().StringVar(&from, "from", "", "backup `FILE` written by herald backup")
	cmd.Flags().StringVar(&keyFile, "secrets-key-file", "", "the cluster's secrets key `FILE` (a node's DATA/secrets.key), needed when the backup holds sealed secrets")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd, "data", "from"); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(data, "events.db")); err == nil {
			return fmt.Errorf("%s already holds a node (events.db); restore into an empty directory", data)
		}
		if node.HasRaftState(data) {
			return fmt.Errorf("%s already holds a node (a Raft log: raft.db or wal/); restore into an empty directory", data)
		}
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		dst := filepath.Join(data, "events.db")
		if err := copyFileSync(from, dst); err != nil {
			return err
		}
		if err := hlog.PrepareRestore(dst); err != nil {
			os.Remove(dst)
			return fmt.Errorf("restore: %w", err)
		}
		if err := restoreSecretsKey(dst, keyFile, filepath.Join(data, node.SecretsKeyFile)); err != nil {
			os.Remove(dst)
			return fmt.Errorf("restore: %w", err)
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s; start it with: herald serve --data %s\n", from, data, data)
		return err
	}
	return cmd
}

// restoreSecretsKey checks that keyFile opens every data key of the
// restored event log at db and copies it to dst; without data keys no
// key is needed.
func restoreSecretsKey(db, keyFile, dst string) error {
	d, err := hlog.Open(db, hlog.Options{})
	if err != nil {
		return err
	}
	keys, err := d.DataKeys()
	d.Close()
	if err != nil {
		return err
	}
	if keyFile == "" {
		if len(keys) > 0 {
			return fmt.Errorf("the backup's signing secrets are sealed: give --secrets-key-file (the cluster's DATA/%s)", node.SecretsKeyFile)
		}
		return nil
	}
	m, err := secrets.ReadKeyFile(keyFile)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := secrets.Unwrap(&m, k.ID, k.Wrapped); err != nil {
			return fmt.Errorf("--secrets-key-file %s does not open the backup's data key %d: %w", keyFile, k.ID, err)
		}
	}
	return secrets.WriteKeyFile(dst, m)
}

func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}
