package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	hlog "github.com/herald-io/herald/log"
)

// runBackup fetches GET /v1/backup into a temp file beside --out, fsyncs
// and checks it, then renames it into place: --out is either a complete,
// consistent event log or untouched.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP address of the node to back up (any member)")
	out := fs.String("out", "", "file to write (required)")
	ca := fs.String("ca", "", "CA certificate (PEM) to trust when --addr is https:// with a private CA")
	if err := envFlags(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpBase(*addr)+"/v1/backup", nil)
	if err != nil {
		return err
	}
	client, err := cliClient(*ca)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup cut short after %d bytes: %w", n, err)
	}
	if err := hlog.CheckFile(tmp.Name()); err != nil {
		return fmt.Errorf("backup failed its consistency check: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	return nil
}

// runRestore makes DATA the data dir of a new single-node cluster whose
// event log is the backup: start it with `herald serve --data DATA`.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "new data directory (must not hold a node yet)")
	from := fs.String("from", "", "backup file written by herald backup")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *from == "" {
		return errors.New("--data and --from are required")
	}
	for _, f := range []string{"events.db", "raft.db"} {
		if _, err := os.Stat(filepath.Join(*data, f)); err == nil {
			return fmt.Errorf("%s already holds a node (%s); restore into an empty directory", *data, f)
		}
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(*data, "events.db")
	if err := copyFileSync(*from, dst); err != nil {
		return err
	}
	if err := hlog.PrepareRestore(dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s into %s; start it with: herald serve --data %s\n", *from, *data, *data)
	return nil
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
