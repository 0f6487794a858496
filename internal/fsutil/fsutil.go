// Package fsutil holds the file-system steps Herald's durable writes share.
package fsutil

import (
	"errors"
	"os"
)

// SyncDir fsyncs a directory, so that the names created, renamed or
// removed in it last (a file renamed into place survives a crash only
// once its directory is synced).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
